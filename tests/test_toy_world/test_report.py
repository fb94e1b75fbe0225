# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/toy_world/report.py --eval-only --seed: a fresh test split scored
with the shipped models, without any training."""
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))


@pytest.mark.slow
def test_report_eval_only_fresh_seed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # report.py chdirs to the repository; restored
    import make_dataset
    import report
    world = tmp_path / 'world'
    make_dataset.main(['--out', str(world), '--seed', '0', '--num-train', '2',
                       '--num-val', '2', '--num-test', '2'])
    work = tmp_path / 'work'
    rows = report.main([
        '--methods', 'excel', 'cam', '--data-root', str(world), '--work-dir',
        str(work), '--eval-only', '--seed', '5', '--num-test', '4',
        '--num-figure', '2'
    ])
    out = capsys.readouterr().out
    # progress with an ETA: rendering, per method, the exports inside
    assert out.count('ETA') >= 3, out[-2000:]
    fresh = Path(f'{world}_test_seed5')
    meta = json.loads((fresh / 'meta.json').read_text())
    assert meta['test_seed'] == 5 and meta['counts']['test'] == 4
    assert [r['method'] for r in rows] == ['ExCEL (full)',
                                          'CAM baseline (plain CLIP, raw maps)']
    for r in rows:
        assert 'train_s' not in r  # nothing was trained
        assert r['checkpoint'].startswith('mmseg_excel/data/toy_world_models')
        assert 0.0 <= r['model_mIoU'] <= 100.0
        assert 0.0 <= r['pseudo_label_mIoU'] <= 100.0
    assert not list(work.rglob('iter_*.pth'))
    assert (work / 'figure_test_seed5.png').is_file()
    assert 'ExCEL (full)' in (work / 'report_test_seed5.md').read_text()
    assert len(list((work / 'excel' / 'pred_test_seed5').glob('*.png'))) == 4

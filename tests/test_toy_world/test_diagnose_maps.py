# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/toy_world/diagnose_maps.py: stage-wise labels of the training-free
ExCEL pipeline on a small toy split; its last stage reproduces the pseudo
labels of tools/generate_pseudo_labels.py exactly (same mIoU), the
inverted share is recomputed from its definition, and the figure is
saved."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))
CONFIG = str(ROOT / 'configs' / 'toy_world' /
             'excel_toy-clip_1xb8-1k_toy-world-96x96.py')


@pytest.mark.slow
def test_diagnosis_stages_match_the_export(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    import diagnose_maps
    import make_dataset
    world = tmp_path / 'world'
    make_dataset.main(['--out', str(world), '--seed', '2', '--num-train', '2',
                       '--num-val', '2', '--num-test', '6'])
    out_dir = tmp_path / 'diag'
    res = diagnose_maps.main([CONFIG, '--data', str(world), '--split', 'test',
                              '--out', str(out_dir), '--batch-size', '4',
                              '--num-vis', '2'])
    out = capsys.readouterr().out
    assert res['images'] == 6
    assert set(res['stages']) == {'raw maps', '+ CAA', '+ CAA + PAR'}
    for s, row in res['stages'].items():
        assert 0 <= row['mIoU'] <= 100 and 0 <= row['fg'] <= 1
        assert re.search(rf'^{re.escape(s)}\s+{row["mIoU"]:.1f}\s+'
                         rf'{100 * row["fg"]:.1f}', out, re.M), out
    assert 0 <= res['stages']['raw maps']['inverted'] <= 1
    pairs = sum(d['pairs'] for d in res['inverted_by_background'].values())
    assert pairs > 0
    inv = sum(d['pairs'] * d['inverted']
              for d in res['inverted_by_background'].values()) / pairs
    assert inv == pytest.approx(res['stages']['raw maps']['inverted'])
    assert (out_dir / 'stages_test.png').is_file()
    # the last stage is the shipped pseudo label: same mIoU as the export
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'generate_pseudo_labels.py'),
         CONFIG, '--out-dir', str(tmp_path / 'pl'), '--split', 'test',
         '--device', 'cpu', '--num-vis', '0', '--cfg-options',
         f'test_dataloader.dataset.data_root={world}',
         'test_dataloader.num_workers=0',
         'test_dataloader.persistent_workers=False'],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    m = re.search(r'pseudo-label mIoU: ([0-9.]+)', log)
    assert m, log[-2000:]
    assert float(m.group(1)) == pytest.approx(
        res['stages']['+ CAA + PAR']['mIoU'], abs=0.006)
    assert not np.isnan(res['true_fg'])

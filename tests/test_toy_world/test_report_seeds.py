# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/toy_world/report.py --seeds: per-seed training runs, mean ± std and
paired ablation differences with Student-t intervals.

Training, testing and pseudo-label scoring are replaced by recording stubs,
so these tests check the report's own logic (seed plumbing, work dirs,
statistics, table) without training anything."""
import itertools
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))

import report  # noqa: E402


def test_mean_std_and_paired_interval_by_hand():
    assert report.mean_std([2.0]) == (2.0, 0.0)
    m, s = report.mean_std([1.0, 2.0, 3.0])
    assert m == pytest.approx(2.0) and s == pytest.approx(1.0)
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, df=2) = 4.302653
    d = report.paired_t_interval([11.0, 12.0, 13.0], [10.0, 10.0, 10.0])
    half = 4.302653 / math.sqrt(3)
    assert d['mean'] == pytest.approx(2.0) and d['n'] == 3
    assert d['lo'] == pytest.approx(2.0 - half, abs=1e-5)
    assert d['hi'] == pytest.approx(2.0 + half, abs=1e-5)
    one = report.paired_t_interval([5.0], [4.0])
    assert one['mean'] == pytest.approx(1.0) and one['lo'] is None
    with pytest.raises(ValueError):
        report.paired_t_interval([], [])


def test_train_command_sets_the_seed_and_work_dirs():
    cmd = report.train_command('c.py', 'w', 'root', ['--amp'], seed=2)
    assert 'randomness.seed=2' in cmd and cmd[-1] == '--amp'
    assert report.seed_work_dir('wd', 'excel', 0).endswith('wd/excel')
    assert report.seed_work_dir('wd', 'excel', 2).endswith('wd/excel_seed2')


def test_seed_other_than_0_never_uses_the_shipped_model(tmp_path):
    assert report.find_checkpoint(str(tmp_path), 'excel',
                                  shipped_ok=False) is None


#: fake test mIoU per (method, seed): ExCEL beats no_tse by 1, 2, 3
FAKE = {('excel', 0): 40.0, ('excel', 1): 42.0, ('excel', 2): 44.0,
        ('no_tse', 0): 39.0, ('no_tse', 1): 40.0, ('no_tse', 2): 41.0}


def test_main_trains_each_seed_and_pairs_the_ablation(tmp_path, monkeypatch,
                                                      capsys):
    world = tmp_path / 'world'
    world.mkdir()
    (world / 'meta.json').write_text('{}')  # no rendering needed
    trained = []

    def fake_train(config, work_dir, data_root, extra, seed=0, options=()):
        key = Path(config).name.split('_')[0]
        key = {'excel': 'excel', 'excel-no-tse': 'no_tse'}[key]
        ckpt = Path(work_dir) / 'iter_1.pth'
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_text(f'{key} {seed}')
        (Path(work_dir) / 'last_checkpoint').write_text(str(ckpt))
        trained.append((key, seed, Path(work_dir).name))
        return 1.0

    def fake_model_miou(config, checkpoint, work_dir, test_root, pred_dir):
        key, seed = Path(checkpoint).read_text().split()
        return FAKE[(key, int(seed))]

    monkeypatch.setattr(report, 'train', fake_train)
    monkeypatch.setattr(report, 'model_miou', fake_model_miou)
    monkeypatch.setattr(report, 'pseudo_label_miou',
                        lambda *a, **k: (30.0, 0.5))
    monkeypatch.setattr(report, 'save_figure', lambda *a, **k: None)
    # excel: pseudo labels, seeds 0..2; then anything
    per_class = itertools.chain([[1.0] * 9, [2.0] * 9, [4.0] * 9, [6.0] * 9],
                                itertools.repeat([0.5] * 9))
    monkeypatch.setattr(report, 'per_class_iou',
                        lambda *a, **k: next(per_class))
    work = tmp_path / 'work'
    rows = report.main([  # no --seeds: 3 training seeds by default
        '--methods', 'excel', 'no_tse', '--data-root', str(world),
        '--work-dir', str(work)
    ])
    assert sorted(trained) == [('excel', 0, 'excel'), ('excel', 1,
                                                       'excel_seed1'),
                               ('excel', 2, 'excel_seed2'),
                               ('no_tse', 0, 'no_tse'),
                               ('no_tse', 1, 'no_tse_seed1'),
                               ('no_tse', 2, 'no_tse_seed2')]
    excel, no_tse = rows
    assert excel['model_mIoU_seeds'] == [40.0, 42.0, 44.0]
    assert excel['model_mIoU'] == pytest.approx(42.0)
    assert excel['model_mIoU_std'] == pytest.approx(2.0)
    assert no_tse['model_mIoU'] == pytest.approx(40.0)
    out = capsys.readouterr().out
    assert '42.0 ± 2.0 (n=3)' in out
    # per-class IoU: pseudo labels once, models averaged over the seeds
    assert excel['pseudo_label_IoU'] == [1.0] * 9
    assert excel['model_IoU'] == [4.0] * 9
    assert '| ExCEL (full) | model | ' + ' | '.join(['4.0'] * 9) + ' |' in out
    assert '| background | apple |' in out
    half = 4.302653 / math.sqrt(3)
    assert f'| TSE | +2.0 | [{2 - half:+.1f}, {2 + half:+.1f}] | 3 |' in out
    saved = json.loads((work / 'report_test.json').read_text())
    assert saved['ablations'][0]['component'] == 'TSE'
    assert saved['ablations'][0]['mean'] == pytest.approx(2.0)
    # a second call finds the per-seed checkpoints and trains nothing more
    trained.clear()
    report.main(['--methods', 'excel', 'no_tse', '--data-root', str(world),
                 '--work-dir', str(work), '--seeds', '0', '1', '2',
                 '--eval-only'])
    assert trained == []


def test_default_seeds():
    """Training runs 3 seeds unless told; --eval-only the shipped seed 0."""
    assert report.parse_args([]).seeds == [0, 1, 2]
    assert report.parse_args(['--eval-only']).seeds == [0]
    assert report.parse_args(['--seeds', '4', '5']).seeds == [4, 5]


def test_per_class_iou_by_hand(tmp_path):
    """Two 2x2 test masks: IoU summed over the images, 255 ignored, NaN for
    a class absent from labels and masks."""
    from PIL import Image
    import numpy as np
    root = tmp_path / 'world'
    (root / 'ImageSets' / 'Segmentation').mkdir(parents=True)
    (root / 'ImageSets' / 'Segmentation' / 'test.txt').write_text('a\nb\n')
    (root / 'SegmentationClassAug').mkdir()
    labels = tmp_path / 'labels'
    labels.mkdir()
    gts = dict(a=[[0, 1], [1, 255]], b=[[0, 0], [2, 2]])
    preds = dict(a=[[0, 1], [3, 3]], b=[[0, 2], [2, 2]])
    for sid in 'ab':
        Image.fromarray(np.uint8(gts[sid])).save(
            root / 'SegmentationClassAug' / f'{sid}.png')
        Image.fromarray(np.uint8(preds[sid])).save(labels / f'{sid}.png')
    iou = report.per_class_iou(str(labels), str(root), num_classes=5)
    # a(1,1) is ignored; bg: gt {a00, b00, b01}, pred {a00, b00}
    assert iou[0] == pytest.approx(200 / 3)
    assert iou[1] == pytest.approx(50.0)   # gt {a01, a10}, pred {a01}
    assert iou[2] == pytest.approx(200 / 3)  # gt {b10, b11}, pred +b01
    assert iou[3] == pytest.approx(0.0)    # predicted on a10 only (gt 1)
    assert math.isnan(iou[4])
    (labels / 'b.png').unlink()
    with pytest.raises(FileNotFoundError, match='b.png'):
        report.per_class_iou(str(labels), str(root), num_classes=5)


def test_export_writes_weights_only_seed0_checkpoints(tmp_path, monkeypatch):
    """``--export`` after ``--seeds 0 1``: the seed-0 checkpoint of each
    trained method becomes ``<SHIPPED_DIR>/<method>.pth`` (state dict +
    meta, no optimizer); seed 1 is never exported."""
    import torch
    world = tmp_path / 'world'
    world.mkdir()
    (world / 'meta.json').write_text('{}')  # no rendering needed
    monkeypatch.setattr(report, 'SHIPPED_DIR', str(tmp_path / 'shipped'))

    def fake_train(config, work_dir, data_root, extra, seed=0, options=()):
        ckpt = Path(work_dir) / 'iter_1.pth'
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        torch.save(dict(state_dict={'w': torch.full((2, ), float(seed))},
                        optimizer={'big': 1}, meta={'iter': 1}), ckpt)
        (Path(work_dir) / 'last_checkpoint').write_text(str(ckpt))
        return 1.0

    monkeypatch.setattr(report, 'train', fake_train)
    monkeypatch.setattr(report, 'model_miou', lambda *a, **k: 10.0)
    monkeypatch.setattr(report, 'pseudo_label_miou',
                        lambda *a, **k: (30.0, 0.5))
    monkeypatch.setattr(report, 'per_class_iou', lambda *a, **k: [0.5] * 9)
    monkeypatch.setattr(report, 'save_figure', lambda *a, **k: None)
    report.main(['--methods', 'excel', '--data-root', str(world),
                 '--work-dir', str(tmp_path / 'work'), '--seeds', '0', '1',
                 '--export'])
    assert sorted(p.name for p in (tmp_path / 'shipped').iterdir()) == [
        'excel.pth']
    out = torch.load(tmp_path / 'shipped' / 'excel.pth', weights_only=False)
    assert sorted(out) == ['meta', 'state_dict']
    torch.testing.assert_close(out['state_dict']['w'], torch.zeros(2))
    assert out['meta']['iter'] == 1

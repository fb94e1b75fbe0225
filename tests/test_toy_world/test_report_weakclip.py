# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/toy_world/report.py WeakCLIP rows and the supervised ceiling: which
masks each stage is trained on, what is scored, the table.

Training, testing and mask generation are replaced by recording stubs (the
tools themselves run for real in tests/test_models/test_weakclip and
tests/test_tools), so this checks the report's plumbing only."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))

import report  # noqa: E402


@pytest.fixture
def stubs(tmp_path, monkeypatch):
    world = tmp_path / 'world'
    world.mkdir()
    (world / 'meta.json').write_text('{}')
    calls = dict(train=[], masks=[])

    def fake_train(config, work_dir, data_root, extra, seed=0, options=()):
        ckpt = Path(work_dir) / 'iter_1000.pth'
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_text(Path(config).name)
        (Path(work_dir) / 'last_checkpoint').write_text(str(ckpt))
        calls['train'].append((Path(config).name, work_dir, list(options)))
        return 2.0

    def fake_masks(config, out_dir, test_root, device, extra=()):
        calls['masks'].append((Path(config).name, out_dir, list(extra)))
        return (55.0 if '--checkpoint' in extra else 20.0), 1.0

    def fake_model_miou(config, checkpoint, work_dir, test_root, pred_dir):
        return 60.0 if Path(config).name.startswith('fcn') else 50.0

    monkeypatch.setattr(report, 'train', fake_train)
    monkeypatch.setattr(report, 'pseudo_label_miou', fake_masks)
    monkeypatch.setattr(report, 'model_miou', fake_model_miou)
    monkeypatch.setattr(report, 'save_figure', lambda *a, **k: None)
    return world, tmp_path / 'work', calls


def test_weakclip_rows_and_ceiling(stubs, capsys):
    world, work, calls = stubs
    rows = report.main(['--methods', 'weakclip_cam', 'weakclip_gt',
                        'supervised', '--data-root', str(world),
                        '--work-dir', str(work), '--seeds', '0'])
    cam, gt, sup = rows
    # CAM: its training-free masks of the TRAIN list are WeakCLIP's targets
    start = str((work / 'weakclip_cam' / 'start_masks_train').resolve())
    assert calls['masks'][0] == (report.METHODS['cam'][1], start,
                                 ['--ann-file', report.TRAIN_LIST])
    wcfg, wdir, wopts = calls['train'][0]
    assert wcfg == report.WEAKCLIP_CONFIG
    assert wopts == [f'train_dataloader.dataset.pseudo_seg_map_dir={start}']
    # refinement: the trained WeakCLIP + CRF on the train list
    ckpt = str(Path(wdir) / 'iter_1000.pth')
    refined = str(Path(wdir) / 'refined_train')
    assert calls['masks'][1] == (report.WEAKCLIP_CONFIG, refined, [
        '--ann-file', report.TRAIN_LIST, '--checkpoint', ckpt, '--crf'])
    # the segmenter learns from the refined masks
    scfg, sdir, sopts = calls['train'][1]
    assert scfg == report.SEGMENTER_CONFIG and sdir.startswith(wdir)
    assert sopts == [
        f'train_dataloader.dataset.pseudo_seg_map_dir={refined}']
    assert (cam['start_mIoU'], cam['refined_mIoU'], cam['model_mIoU'],
            cam['segmenter_mIoU']) == (20.0, 55.0, 50.0, 60.0)
    # the exact masks: no start masks generated, mIoU 100 by definition
    assert calls['train'][2][2] == [
        'train_dataloader.dataset.pseudo_seg_map_dir=' +
        str((world / 'SegmentationClassAug').resolve())]
    assert gt['start_mIoU'] == 100.0
    # fully supervised ceiling: the same FCN on the exact masks
    assert calls['train'][4][0] == report.SEGMENTER_CONFIG
    assert calls['train'][4][2] == [
        'train_dataloader.dataset.pseudo_seg_map_dir=SegmentationClassAug']
    assert sup['model_mIoU'] == 60.0
    assert len(calls['train']) == 5
    out = capsys.readouterr().out
    assert ('| WeakCLIP on CAM-baseline masks | 20.0 | 55.0 | 50.0 | 60.0 |'
            in out)
    assert 'fully supervised ceiling): 60.0 mIoU (test)' in out
    # a second run finds every checkpoint: nothing is trained again
    calls['train'].clear()
    report.main(['--methods', 'weakclip_cam', 'supervised', '--data-root',
                 str(world), '--work-dir', str(work), '--eval-only'])
    assert calls['train'] == []


def test_eval_only_without_a_weakclip_checkpoint(stubs):
    world, work, _ = stubs
    with pytest.raises(FileNotFoundError, match='weakclip_excel'):
        report.main(['--methods', 'weakclip_excel', '--data-root',
                     str(world), '--work-dir', str(work), '--eval-only'])

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/generate_pseudo_labels.py with the training-free ExCEL config on a
tiny VOC and the tiny CLIP (EXCEL.md §10): one PNG per image with VOC ids,
resuming without rewriting finished files, and mmseg's per-class IoU table.

The real config is used as is; only what cannot run here is overridden on
the command line: the CLIP source (the tiny OpenAI-layout file, architecture
inferred from its shapes), the layer counts that exceed the 3-block tiny ViT
(SVC, CAA, ExCELHead), the ExCELHead width, the attribute-bank cache folder
and the data root. The 20 VOC classes, TSE (bank built from
``voc.json``), CAA and PAR stay as configured.
"""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
from PIL import Image

from mmseg_excel.testing.tiny_datasets import make_tiny_voc

ROOT = Path(__file__).resolve().parents[2]
CFG = str(ROOT / 'configs' / 'excel' /
          'excel_clip-vit-b16_training-free_voc12aug-320x320.py')
ENV = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
#: VOC ids of a pseudo label: background, the 20 classes, ignore
ALLOWED = set(range(21)) | {255}


def _cfg_options(data: Dict, clip_file: str, bank_dir: Path) -> List[str]:
    """Command-line overrides that fit the config to the tiny CLIP/VOC."""
    return [
        f'pseudo_label_dataloader.dataset.data_root={data["root"]}',
        # train_aug holds the background-only image as well
        'pseudo_label_dataloader.dataset.ann_file='
        'ImageSets/Segmentation/train_aug.txt',
        'pseudo_label_dataloader.num_workers=0',
        'model.backbone.model_name=None',
        f'model.backbone.pretrained={clip_file}',
        'model.backbone.svc.num_blocks=2',
        'model.text_head.clip.model_name=None',
        f'model.text_head.clip.pretrained={clip_file}',
        f'model.text_head.tse.cache_dir={bank_dir}',
        'model.pseudo_labeler.affinity.num_layers=2',
        'model.decode_head.in_channels=64',
        'model.decode_head.channels=16',
        'model.decode_head.num_heads=2',
        'model.decode_head.num_layers=3',
        'model.decode_head.num_decoder_layers=1',
    ]


def _generate(data: Dict, clip_file: str, out_dir: Path, tmp: Path) -> str:
    """Run the tool in a subprocess; return its stdout + stderr."""
    args = [
        sys.executable,
        str(ROOT / 'tools' / 'generate_pseudo_labels.py'), CFG, '--out-dir',
        str(out_dir), '--device', 'cpu', '--num-vis', '1', '--cfg-options',
        *_cfg_options(data, clip_file, tmp / 'banks')
    ]
    proc = subprocess.run(
        args, cwd=tmp, env=ENV, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def generated(tmp_path_factory,
              tiny_clip_files) -> Tuple[Dict, Path, str, Path]:
    """The tiny VOC, the output folder, the log of a first run, the cwd."""
    tmp = tmp_path_factory.mktemp('excel_pl')
    data = make_tiny_voc(str(tmp / 'voc'), num_train=4, num_val=1)
    out_dir = Path(data['root']) / 'pseudo_labels' / 'excel'
    log = _generate(data, tiny_clip_files['openai'], out_dir, tmp)
    return data, out_dir, log, tmp


def test_one_png_per_image_with_voc_ids(generated):
    data, out_dir, log, _ = generated
    ids = data['splits']['train_aug']
    assert f'{len(ids)} computed, 0 already present' in log, log[-2000:]
    assert 'ETA' in log  # mmengine's progress bar
    pngs = sorted(p.name for p in out_dir.glob('*.png'))
    assert pngs == sorted(f'{i}.png' for i in ids)
    for img_id in ids:
        lab = np.asarray(Image.open(out_dir / f'{img_id}.png'))
        w, h = Image.open(data['img_paths'][img_id]).size
        assert lab.shape == (h, w) and lab.dtype == np.uint8
        vals = set(np.unique(lab).tolist())
        assert vals <= ALLOWED, (img_id, vals)
        # ExCEL labels only present classes (tiny labels are class ids)
        assert vals <= {0} | set(data['labels'][img_id]), (img_id, vals)
    # an image without foreground label: all background (documented)
    bg_only = np.asarray(Image.open(out_dir / f'{data["bg_only_id"]}.png'))
    assert (bg_only == 0).all()
    # the attribute bank of TSE was built (TSE is part of the config)
    assert any((generated[3] / 'banks').iterdir())
    # the picture of the first image (WSSSVisualizer): image | pseudo | gt
    # in row 1 (titles 14 px), one CAM row per present class set
    first = ids[0]
    pic = np.asarray(Image.open(out_dir / 'vis' / f'{first}.png'))
    w, h = Image.open(data['img_paths'][first]).size
    rows = 2 if set(data['labels'][first]) - {0} else 1
    assert pic.shape == (rows * (h + 14), 3 * w, 3), pic.shape
    lab = np.asarray(Image.open(out_dir / f'{first}.png'))
    np.testing.assert_array_equal(pic[14:14 + h, :w],
                                  np.asarray(
                                      Image.open(data['img_paths'][first])
                                      .convert('RGB')))
    # ignored pseudo-label pixels are white in the pseudo panel
    if (lab == 255).any():
        y, x = np.argwhere(lab == 255)[0]
        assert (pic[14 + y, w + x] == 255).all()


def test_prints_per_class_iou_table(generated):
    log = generated[2]
    assert 'pseudo-label mIoU' in log
    # mmseg IoUMetric's table: header row and one row per VOC class
    assert re.search(r'\|\s*Class\s*\|\s*IoU\s*\|', log), log[-3000:]
    for name in ('background', 'aeroplane', 'tvmonitor'):
        assert re.search(rf'\|\s*{name}\s*\|', log), (name, log[-3000:])
    assert re.search(r'pseudo-label mIoU: [0-9.]+', log)


def test_resume_recomputes_only_the_missing_png(generated, tiny_clip_files):
    data, out_dir, _, tmp = generated
    ids = data['splits']['train_aug']
    paths = {i: out_dir / f'{i}.png' for i in ids}
    before = {i: np.asarray(Image.open(p)) for i, p in paths.items()}
    stamps = {i: os.stat(p).st_mtime_ns for i, p in paths.items()}
    gone = ids[2]
    paths[gone].unlink()
    log = _generate(data, tiny_clip_files['openai'], out_dir, tmp)
    assert f'(1 computed, {len(ids) - 1} already present)' in log, log[-2000:]
    assert paths[gone].is_file()
    for i in ids:
        if i != gone:  # finished files are not rewritten
            assert os.stat(paths[i]).st_mtime_ns == stamps[i], i
        # deterministic: the recomputed label equals the first one
        assert np.array_equal(np.asarray(Image.open(paths[i])), before[i])
    # the resumed labels are read back for the metrics: the table is printed
    assert re.search(r'\|\s*aeroplane\s*\|', log)


def test_table_has_precision_recall_confusion(generated):
    """The training-free report: per-class IoU, precision, recall and the
    confusion ratio FP/TP (WSSSIoUMetric)."""
    log = generated[2]
    assert re.search(
        r'\|\s*Class\s*\|\s*IoU\s*\|\s*Precision\s*\|\s*Recall\s*\|'
        r'\s*Confusion\s*\|', log), log[-3000:]
    assert re.search(r'confusion FP/TP [0-9.na]+', log), log[-1000:]


def _run_tool(args: List[str], tmp: Path) -> Tuple[int, str]:
    proc = subprocess.run(
        [sys.executable,
         str(ROOT / 'tools' / 'generate_pseudo_labels.py')] + args,
        cwd=tmp, env=ENV, capture_output=True, text=True, timeout=900)
    return proc.returncode, proc.stdout + proc.stderr


def test_manifest_refuses_other_settings(generated, tiny_clip_files):
    """A rerun with other settings (here --crf) into the same folder is
    refused; --overwrite recomputes every mask."""
    data, out_dir, _, tmp = generated
    assert (out_dir / 'manifest.json').is_file()
    opts = _cfg_options(data, tiny_clip_files['openai'], tmp / 'banks')
    rc, log = _run_tool([
        CFG, '--out-dir', str(out_dir), '--device', 'cpu', '--num-vis', '0',
        '--crf', '--cfg-options', *opts
    ], tmp)
    assert rc != 0 and 'other settings' in log and 'crf' in log, log[-2000:]
    # a folder of PNGs without a manifest is refused too
    bare = tmp / 'bare'
    bare.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(bare / 'x.png')
    rc, log = _run_tool([
        CFG, '--out-dir', str(bare), '--device', 'cpu', '--num-vis', '0',
        '--cfg-options', *opts
    ], tmp)
    assert rc != 0 and 'no manifest.json' in log, log[-2000:]
    rc, log = _run_tool([
        CFG, '--out-dir', str(out_dir), '--device', 'cpu', '--num-vis', '0',
        '--crf', '--overwrite', '--cfg-options', *opts
    ], tmp)
    n = len(data['splits']['train_aug'])
    assert rc == 0 and f'({n} computed, 0 already present)' in log, \
        log[-2000:]


TRAIN_CFG = str(ROOT / 'configs' / 'excel' /
                'excel_clip-vit-b16_1xb4-30k_voc12aug-320x320.py')


def test_trained_variant_loads_checkpoints_strictly(generated,
                                                    tiny_clip_files):
    """--checkpoint with the training config: the trained variant (LVC flip
    fusion + decoder affinity) with the weights loaded strictly; a file
    with keys the model does not have (an unconverted official checkpoint)
    is refused, naming them; the training config without --checkpoint gives
    the training-free labels, and the training-free config refuses one."""
    import torch
    from mmengine.config import Config, DictAction
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    data, _, _, tmp = generated
    opts = _cfg_options(data, tiny_clip_files['openai'], tmp / 'banks')
    cfg = Config.fromfile(TRAIN_CFG)
    cfg.merge_from_dict({
        k: DictAction._parse_iterable(v)
        for k, v in (o.split('=', 1) for o in opts if o.startswith('model.'))
    })
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    sd = model.state_dict()
    assert not any(k.startswith('backbone.') for k in sd)
    good = tmp / 'good.pth'
    torch.save(dict(state_dict=sd), good)
    bad = tmp / 'bad.pth'
    torch.save(dict(state_dict=dict(sd, **{'decoder.linear_pred.weight':
                                           torch.zeros(1)})), bad)
    train_opts = [
        o.replace('pseudo_label_dataloader', 'val_dataloader') for o in opts
    ]
    common = ['--split', 'val', '--device', 'cpu', '--num-vis', '0']
    rc, log = _run_tool([
        TRAIN_CFG, '--out-dir', str(tmp / 'trained'), '--checkpoint',
        str(good), *common, '--cfg-options', *train_opts
    ], tmp)
    assert rc == 0, log[-3000:]
    manifest = (tmp / 'trained' / 'manifest.json').read_text()
    assert '"use_decoder": true' in manifest and 'sha256' in manifest
    rc, log = _run_tool([
        TRAIN_CFG, '--out-dir', str(tmp / 'trained_bad'), '--checkpoint',
        str(bad), *common, '--cfg-options', *train_opts
    ], tmp)
    assert rc != 0 and 'decoder.linear_pred.weight' in log, log[-2000:]
    rc, log = _run_tool([
        TRAIN_CFG, '--out-dir', str(tmp / 'free'), *common, '--cfg-options',
        *train_opts
    ], tmp)
    assert rc == 0, log[-3000:]
    assert '"use_decoder": false' in (tmp / 'free' /
                                      'manifest.json').read_text()
    rc, log = _run_tool([
        CFG, '--out-dir', str(tmp / 'pinned'), '--checkpoint', str(good),
        '--device', 'cpu', '--cfg-options', *opts
    ], tmp)
    assert rc != 0 and 'pins training-free' in log, log[-2000:]


def test_ann_file_option_exports_the_baseline_split(generated,
                                                    tiny_clip_files):
    """configs/baselines/README.md: ``--ann-file
    ImageSets/Segmentation/train_aug.txt`` exports every image the baseline
    trains on, whatever split the method config scores by default."""
    data, _, _, tmp = generated
    opts = [
        o for o in _cfg_options(data, tiny_clip_files['openai'], tmp /
                                'banks') if '.ann_file=' not in o
    ]
    out = tmp / 'aug'
    rc, log = _run_tool([
        CFG, '--ann-file', 'ImageSets/Segmentation/train_aug.txt',
        '--out-dir', str(out), '--device', 'cpu', '--num-vis', '0',
        '--cfg-options', *opts
    ], tmp)
    assert rc == 0, log[-3000:]
    ids = data['splits']['train_aug']
    assert len(ids) > len(data['splits']['train'])
    assert sorted(p.stem for p in out.glob('*.png')) == sorted(ids)

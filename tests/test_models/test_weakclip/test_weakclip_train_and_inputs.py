# Copyright (c) mmseg-excel contributors. All rights reserved.
"""WeakCLIP through tools/train.py on a tiny Toy World, and its bad-input
errors (class name over the token budget, class count mismatch, missing
pseudo mask)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[3]
CFG = ROOT / 'configs' / 'toy_world' / \
    'weakclip_toy-clip_1xb8-2k_toy-world-96x96.py'
PY = sys.executable


def _toy(tmp_path) -> Path:
    out = tmp_path / 'toy'
    subprocess.run([PY, str(ROOT / 'tools/toy_world/make_dataset.py'),
                    '--out', str(out), '--num-train', '4', '--num-val', '2',
                    '--num-test', '2', '--size', '64'], check=True,
                   capture_output=True)
    return out


def _train(tmp_path, data: Path, pseudo: str):
    opts = [f'{k}.dataset.data_root={data}' for k in
            ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    opts += [f'train_dataloader.dataset.pseudo_seg_map_dir={pseudo}',
             'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
             'default_hooks.checkpoint.interval=2',
             'train_dataloader.batch_size=2',
             'train_dataloader.num_workers=0',
             'train_dataloader.persistent_workers=False',
             'val_dataloader.num_workers=0',
             'val_dataloader.persistent_workers=False']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(
        [PY, str(ROOT / 'tools/train.py'), str(CFG), '--work-dir',
         str(tmp_path / 'work'), '--cfg-options'] + opts,
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_weakclip_trains_through_tools_train(tmp_path):
    """Two iterations + validation; the true masks stand in for a method's
    pseudo masks (the plumbing is what is tested)."""
    data = _toy(tmp_path)
    proc = _train(tmp_path, data, 'SegmentationClassAug')
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert 'decode.loss_seeding' in out and 'decode.loss_boundary' in out
    assert 'aux_identity.loss_ce' in out
    assert 'mIoU' in out
    ckpt = torch.load(tmp_path / 'work' / 'iter_2.pth', map_location='cpu',
                      weights_only=False)
    keys = ckpt['state_dict']
    # trainable CLIP (min_lr floor): its weights are saved
    assert any(k.startswith('backbone.resblocks.') for k in keys)
    assert 'contexts' in keys and 'gamma' in keys and 'beta' in keys
    # refinement: trained WeakCLIP -> ms+flip probabilities -> dense CRF
    # -> PNG masks, scored against the ground truth, resumable
    out_dir = tmp_path / 'refined'
    cmd = [PY, str(ROOT / 'tools/generate_pseudo_labels.py'), str(CFG),
           '--checkpoint', str(tmp_path / 'work' / 'iter_2.pth'), '--crf',
           '--split', 'test', '--out-dir', str(out_dir), '--cfg-options',
           f'test_dataloader.dataset.data_root={data}',
           'test_dataloader.num_workers=0',
           'test_dataloader.persistent_workers=False']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    pngs = sorted(out_dir.glob('*.png'))
    assert len(pngs) == 2
    assert 'pseudo-label mIoU' in out and '2 computed' in out
    from PIL import Image
    import numpy as np
    lab = np.asarray(Image.open(pngs[0]))
    assert lab.shape == (64, 64) and lab.max() < 9
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 and '2 already present' in proc.stdout


def test_missing_pseudo_mask_folder_is_an_error(tmp_path):
    data = _toy(tmp_path)
    proc = _train(tmp_path, data, 'no_such_pseudo_dir')
    assert proc.returncode != 0
    assert 'no_such_pseudo_dir' in proc.stdout + proc.stderr


def test_class_name_over_token_budget():
    from mmseg_excel.models.text import tokenize_class_names
    tok = tokenize_class_names(['background', 'dog'], 5)
    assert tok.shape == (2, 5)
    with pytest.raises(ValueError, match='potted plant with long leaves'):
        tokenize_class_names(['dog', 'potted plant with long leaves'], 5)


def test_class_count_must_match_head():
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    import mmseg_excel.models  # noqa: F401
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(str(CFG)).model
    cfg.backbone.model_name = str(ROOT / cfg.backbone.model_name)
    cfg.backbone.pretrained = str(ROOT / cfg.backbone.pretrained)
    cfg.text_encoder.model_name = cfg.backbone.model_name
    cfg.text_encoder.pretrained = cfg.backbone.pretrained
    cfg.class_names = cfg.class_names[:-1]
    with pytest.raises(ValueError, match='num_classes=9'):
        MODELS.build(cfg)


def _pseudo_dataset(tmp_path):
    """The toy WeakCLIP training dataset on pseudo masks (copies of the
    exact ones) and the pseudo-mask path of its sample 1."""
    import shutil
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    import mmseg_excel  # noqa: F401
    init_default_scope('mmseg')
    data = _toy(tmp_path)
    pseudo = data / 'pseudo'
    shutil.copytree(data / 'SegmentationClassAug', pseudo)
    cfg = Config.fromfile(str(CFG)).train_dataloader.dataset
    cfg.data_root = str(data)
    cfg.pseudo_seg_map_dir = 'pseudo'
    ds = DATASETS.build(cfg)
    return ds, pseudo / f'{ds.get_data_info(1)["img_id"]}.png'


def test_pseudo_mask_id_over_class_count_names_the_file(tmp_path):
    """A pseudo mask holding id 9 with the 9 toy classes (0..8)."""
    import numpy as np
    from PIL import Image
    ds, bad = _pseudo_dataset(tmp_path)
    assert ds[0]['data_samples'].gt_sem_seg.data.max() < 9
    m = np.asarray(Image.open(bad)).copy()
    m[0, 0] = 9
    Image.fromarray(m).save(bad)
    ds[0]
    with pytest.raises(ValueError, match=rf'{bad.name}.*\[9\] outside'):
        ds[1]


def test_truncated_pseudo_mask_names_the_file(tmp_path):
    """A pseudo-mask PNG cut in half: an error naming the mask file."""
    ds, bad = _pseudo_dataset(tmp_path)
    raw = bad.read_bytes()
    bad.write_bytes(raw[:len(raw) // 2])
    ds[0]  # the other samples still load
    with pytest.raises(OSError, match=re.escape(str(bad))):
        ds[1]

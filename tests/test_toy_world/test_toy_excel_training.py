# Copyright (c) mmseg-excel contributors. All rights reserved.
"""The toy-world ExCEL config end to end on CPU with the shipped toy CLIP.

* a few training iterations (through mmengine's Runner, LVC switched on
  mid-way) lower the loss and predict valid class ids;
* ``tools/train.py`` → ``--resume`` → ``tools/test.py`` (single scale, and
  multi-scale + flip TTA with dense CRF) on a tiny rendered world.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / 'configs' / 'toy_world' / \
    'excel_toy-clip_1xb8-1k_toy-world-96x96.py'
sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))


def _tiny_world(root: Path, num_train: int = 16) -> Path:
    import make_dataset
    make_dataset.main([
        '--out', str(root), '--seed', '3', '--num-train',
        str(num_train), '--num-val', '4', '--num-test', '4', '--size', '96'
    ])
    return root


def _data_options(root: Path) -> list:
    return [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ] + [
        f'{split}_dataloader.{k}={v}' for split in ('train', 'val', 'test')
        for k, v in (('num_workers', 0), ('persistent_workers', False))
    ]


@pytest.mark.slow
def test_toy_excel_loss_decreases(tmp_path):
    from mmengine.config import Config
    from mmengine.runner import Runner
    root = _tiny_world(tmp_path / 'world')
    cfg = Config.fromfile(str(CONFIG))
    cfg.work_dir = str(tmp_path / 'work')
    opts = {}
    for o in _data_options(root):
        k, v = o.split('=')
        opts[k] = int(v) if v.isdigit() else (False if v == 'False' else v)
    cfg.merge_from_dict(opts)
    iters = 40
    cfg.merge_from_dict({
        'train_dataloader.batch_size': 4,
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': iters,
        'param_scheduler.0.max_iters': iters,
        'param_scheduler.0.warmup_iters': 2,
        'model.lvc_start_iter': 20,
        'model.aff_target_switch_iter': 30,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': iters,
    })
    # no PseudoLabelHook: the switches must still happen (the model reads
    # the iteration from mmengine's MessageHub)
    cfg.custom_hooks = []
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    losses = np.asarray(losses, np.float64)
    assert len(losses) == iters and np.isfinite(losses).all()
    first, last = losses[:8].mean(), losses[-8:].mean()
    assert last < first, (first, last, losses.round(3).tolist())
    # the LVC switch happened and was logged
    lvc = runner.message_hub.get_scalar('train/pl_lvc').data[0]
    assert lvc[0] == 0 and lvc[-1] == 1
    assert list(lvc).index(1) == 20, list(lvc)  # 0-based iteration 20
    # and so did the affinity-target switch (iteration 30)
    aff = runner.message_hub.get_scalar('train/pl_aff_pred').data[0]
    assert list(aff).index(1) == 30 and aff[-1] == 1, list(aff)
    # predictions are valid class ids of the 9-class toy world
    model = runner.model.eval()
    batch = next(iter(runner.test_dataloader))
    with torch.no_grad():
        out = model.test_step(batch)
    for ds in out:
        pred = ds.pred_sem_seg.data
        assert pred.shape[-2:] == ds.gt_sem_seg.data.shape[-2:]
        assert int(pred.min()) >= 0 and int(pred.max()) <= 8


def _run(args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.mark.slow
def test_toy_excel_tools_train_resume_test_tta(tmp_path):
    root = _tiny_world(tmp_path / 'world', num_train=8)
    work = tmp_path / 'work'
    opts = _data_options(root) + [
        'train_dataloader.batch_size=2', 'param_scheduler.0.warmup_iters=1',
        'model.lvc_start_iter=3', 'model.aff_target_switch_iter=5',
        'default_hooks.checkpoint.interval=2', 'custom_hooks.0.vis_interval=2'
    ]
    train = str(ROOT / 'tools' / 'train.py')
    _run([train, str(CONFIG), '--work-dir', str(work), '--cfg-options',
          'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
          'param_scheduler.0.max_iters=6'] + opts, cwd=tmp_path)
    assert (work / 'iter_4.pth').is_file()
    # the frozen CLIP is not in our checkpoints
    sd = torch.load(work / 'iter_4.pth', map_location='cpu',
                    weights_only=False)['state_dict']
    assert not any(k.startswith('backbone.') for k in sd), list(sd)[:5]
    assert any(k.startswith('decode_head.') for k in sd)
    out = _run([train, str(CONFIG), '--work-dir', str(work), '--resume',
                '--cfg-options', 'train_cfg.max_iters=6',
                'train_cfg.val_interval=6', 'param_scheduler.0.max_iters=6'] +
               opts, cwd=tmp_path)
    assert re.search(r'resumed epoch: \d+, iter: 4', out), out[-3000:]
    assert (work / 'iter_6.pth').is_file()
    # the hook's pictures (vis_interval=2) through the local vis backend
    pics = sorted(p.name for p in work.glob('*/vis_data/vis_image/*.png'))
    assert pics == ['pseudo_labels_2.png', 'pseudo_labels_4.png',
                    'pseudo_labels_6.png'], pics
    test = str(ROOT / 'tools' / 'test.py')
    pred_dir = tmp_path / 'preds'
    out = _run([test, str(CONFIG), str(work / 'iter_6.pth'), '--work-dir',
                str(work / 'test'), '--out', str(pred_dir), '--cfg-options'] +
               opts, cwd=tmp_path)
    assert 'mIoU' in out and 'kite' in out
    assert len(list(pred_dir.glob('*.png'))) == 4
    # --show-dir: image | prediction | ground truth per test image
    show = tmp_path / 'show'
    _run([test, str(CONFIG), str(work / 'iter_6.pth'), '--work-dir',
          str(work / 'test_show'), '--show-dir', str(show), '--cfg-options'] +
         opts, cwd=tmp_path)
    from PIL import Image
    drawn = sorted(show.glob('vis_data/vis_image/test_*.png'))
    assert len(drawn) == 4, sorted(show.glob('**/*'))
    assert np.asarray(Image.open(drawn[0])).shape == (96 + 14, 3 * 96, 3)
    out = _run([test, str(CONFIG), str(work / 'iter_6.pth'), '--work-dir',
                str(work / 'test_tta'), '--tta', '--cfg-options'] + opts,
               cwd=tmp_path)
    m = re.search(r'mIoU: ([0-9.]+)', out)
    assert m, out[-3000:]
    assert 0.0 <= float(m.group(1)) <= 100.0

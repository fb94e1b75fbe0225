# Copyright (c) mmseg-excel contributors. All rights reserved.
"""A loss that turns NaN/Inf stops ``tools/train.py`` with a message naming
the iteration, the loss terms and the last good checkpoint, which is kept
(finite weights) while the poisoned iteration is never saved."""
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs' / 'toy_world' /
             'excel_toy-clip_1xb8-1k_toy-world-96x96.py')
sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    import make_dataset
    world = tmp_path / 'world'
    make_dataset.main(['--out', str(world), '--seed', '3', '--num-train', '8',
                       '--num-val', '2', '--num-test', '2'])
    opts = []
    for s in ('train', 'val', 'test'):
        opts += [f'{s}_dataloader.dataset.data_root={world}',
                 f'{s}_dataloader.num_workers=0',
                 f'{s}_dataloader.persistent_workers=False']
    opts += [
        'train_dataloader.batch_size=2', 'train_cfg.max_iters=6',
        'train_cfg.val_interval=100', 'param_scheduler.0.max_iters=6',
        'param_scheduler.0.warmup_iters=1', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=1', 'custom_hooks.0.vis_interval=0',
        # a learning rate that makes the loss blow up within a few steps
        'optim_wrapper.optimizer.lr=1e30'
    ]
    work = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'train.py'), CONFIG,
         '--work-dir', str(work), '--cfg-options', *opts],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
        env=dict(os.environ, PYTHONUNBUFFERED='1'))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    import re
    m = re.search(r'FloatingPointError: non-finite loss at iteration (\d+): '
                  r'(.*?); training stopped before this iteration could be '
                  r'saved\. Last good checkpoint: (\S+)', out)
    assert m, out[-3000:]
    it = int(m.group(1))
    assert 'loss=' in m.group(2) and it >= 2
    assert sorted(p.name for p in work.glob('iter_*.pth')) == sorted(
        f'iter_{i}.pth' for i in range(1, it))
    last = Path(m.group(3))
    assert last == work / f'iter_{it - 1}.pth'
    sd = torch.load(last, map_location='cpu', weights_only=False)
    floats = [v for v in sd['state_dict'].values() if v.is_floating_point()]
    assert floats and all(torch.isfinite(v).all() for v in floats)

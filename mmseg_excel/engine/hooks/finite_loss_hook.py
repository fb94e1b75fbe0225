# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Stop training at the first non-finite loss (README.md, "Bad
input").

A NaN or Inf loss poisons the weights at the optimiser step that follows
it, and every later checkpoint would hold them. :class:`FiniteLossHook`
checks the logged losses after every iteration and raises a
``FloatingPointError`` naming the iteration, the loss terms that are not
finite and the last checkpoint on disk — before mmengine's
``CheckpointHook`` (lower priority) can write the poisoned weights — so the
run stops with the last good checkpoint kept. ``tools/train.py`` adds it to
every config.
"""
import os.path as osp
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise at the first iteration whose logged losses (every value
    whose name contains ``loss``, the total included) are not all finite."""

    priority = 'ABOVE_NORMAL'  # before CheckpointHook (VERY_LOW)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs:
            return
        means = {}
        for k, v in outputs.items():
            if 'loss' not in k or not isinstance(v, (torch.Tensor, int,
                                                     float)):
                continue
            t = torch.as_tensor(v).detach().float()
            if t.numel():
                means[k] = t.mean()
        if not means:
            return
        device = next(iter(means.values())).device
        values = torch.stack([m.to(device) for m in means.values()])
        if bool(torch.isfinite(values).all()):  # one host sync
            return
        bad = {k: float(m) for k, m in means.items()
               if not torch.isfinite(m)}
        last = osp.join(runner.work_dir, 'last_checkpoint')
        ckpt = 'none yet'
        if osp.isfile(last):
            with open(last) as f:
                ckpt = f.read().strip() or ckpt
        terms = ', '.join(f'{k}={v}' for k, v in sorted(bad.items()))
        raise FloatingPointError(
            f'non-finite loss at iteration {runner.iter + 1}: {terms}; '
            f'training stopped before this iteration could be saved. Last '
            f'good checkpoint: {ckpt} (resume with --resume after lowering '
            'the learning rate or checking the data)')

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Resume that continues exactly: the torch RNG state travels in the
checkpoint (docs/train_test.md, "Resuming").

mmengine re-seeds at start-up and, on ``--resume``, advances the dataloader
past the iterations already trained, which replays the data-side random
draws (numpy, in the transforms) exactly. What it does not replay is the
model-side torch RNG (Dropout2d of the decoder, whose output also drives
LVC). This hook stores the torch (and CUDA) RNG state in every checkpoint and
restores it right before the first iteration after a resume — after the
dataloader has been advanced — so ``N`` iterations + ``--resume`` to ``2N``
equal ``2N`` straight (bit-identical on CPU; on GPU also set
``randomness=dict(deterministic=True)`` for deterministic cuDNN kernels).
"""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

KEY = 'mmseg_excel_rng_state'


@HOOKS.register_module()
class ResumeRNGHook(Hook):
    """Save the torch / CUDA RNG state with checkpoints; restore on resume."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._pending: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        state = dict(torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint[KEY] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # only a resumed run continues the random stream (not load_from)
        if getattr(runner, '_resume', False):
            self._pending = checkpoint.get(KEY)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        if 'cuda' in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])


__all__ = ['ResumeRNGHook']

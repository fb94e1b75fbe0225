# Copyright (c) mmseg-excel contributors. All rights reserved.
"""WeakCLIP's learning-rate rule (mmcv 1.x ``CosineAnnealing`` with linear
warm-up) as an mmengine scheduler (docs/methods/weakclip.md §6).

With ``t`` the number of completed updates and ``base`` a group's initial
LR::

    cos(t) = min_lr + (base − min_lr) · (1 + cos(π t / max_iters)) / 2
    t <  warmup_iters: lr = cos(t) · (1 − (1 − t/warmup_iters)(1 − ratio))
    t >= warmup_iters: lr = cos(t)

``min_lr`` is ABSOLUTE for every group: a group with ``lr_mult=0``
(base 0) gets ``min_lr·(1 − cos(π t/T))/2 > 0`` — WeakCLIP's "frozen" CLIP,
adapter and text encoder do move. The warm-up multiplies the cosine value of
the same step. mmengine's ``LinearLR`` + ``CosineAnnealingLR`` chain
recursively and differ from this; hence the closed form.
"""
import math
from typing import List

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmseg.registry import PARAM_SCHEDULERS


def cosine_warmup_value(step: int, base: float, max_iters: int,
                        min_value: float, warmup_iters: int,
                        warmup_ratio: float) -> float:
    """The value at ``step`` for a group of initial value ``base``."""
    value = min_value + (base - min_value) * (
        1 + math.cos(math.pi * step / max_iters)) / 2
    if step < warmup_iters:
        value *= 1 - (1 - step / warmup_iters) * (1 - warmup_ratio)
    return value


@PARAM_SCHEDULERS.register_module()
class CosineWarmupParamScheduler(_ParamScheduler):
    """Cosine annealing to an absolute floor, times a linear warm-up.

    Args:
        optimizer: optimizer or optim wrapper.
        param_name: parameter to schedule (``'lr'``).
        max_iters: cosine period (VOC 20000, COCO 40000).
        eta_min: absolute floor for every group (1e-6).
        warmup_iters: warm-up length (1500).
        warmup_ratio: warm-up start factor (1e-6).
        begin / end / last_step / by_epoch / verbose: as mmengine's.
    """

    def __init__(self,
                 optimizer,
                 param_name: str,
                 max_iters: int,
                 eta_min: float = 0.0,
                 warmup_iters: int = 0,
                 warmup_ratio: float = 1e-6,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = False,
                 verbose: bool = False) -> None:
        if max_iters <= 0:
            raise ValueError(f'max_iters must be > 0, got {max_iters}')
        if not 0 <= warmup_iters <= max_iters:
            raise ValueError(f'warmup_iters must be in [0, max_iters], got '
                             f'{warmup_iters}')
        self.max_iters, self.eta_min = max_iters, eta_min
        self.warmup_iters, self.warmup_ratio = warmup_iters, warmup_ratio
        super().__init__(
            optimizer, param_name=param_name, begin=begin,
            end=max_iters if end == INF else end, last_step=last_step,
            by_epoch=by_epoch, verbose=verbose)

    def _get_value(self) -> List[float]:
        return [
            cosine_warmup_value(self.last_step, base, self.max_iters,
                                self.eta_min, self.warmup_iters,
                                self.warmup_ratio)
            for base in self.base_values
        ]


@PARAM_SCHEDULERS.register_module()
class CosineWarmupLR(LRSchedulerMixin, CosineWarmupParamScheduler):
    """WeakCLIP's LR rule (see the module doc). Config (VOC)::

        param_scheduler = [dict(type='CosineWarmupLR', max_iters=20000,
                                eta_min=1e-6, warmup_iters=1500,
                                warmup_ratio=1e-6, by_epoch=False)]
    """

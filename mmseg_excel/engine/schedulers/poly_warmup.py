# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCEL's PolyWarmupAdamW learning-rate rule as an mmengine scheduler.

docs/methods/excel.md §8.1, official behaviour 16. With ``s`` the number of
completed updates
(0 during the first iteration) and ``base`` a group's initial LR::

    s <  warmup_iters: lr = base · (1 − (1 − s/warmup_iters)·(1 − warmup_ratio))
    s <  max_iters:    lr = base · (1 − s/max_iters) ** power     (NOT shifted)
    s >= max_iters:    lr unchanged (the official optimizer stops updating it)

Why not mmengine's ``LinearLR`` + ``PolyLR``: ``PolyLR(begin=warmup)``
decays over ``end − begin − 1`` steps starting at the warmup end (shifted:
``base·(1 − (s − warmup)/(end − warmup − 1))``), and ``PolyLR(begin=0)``
chained with ``LinearLR`` multiplies the two factors during the warmup.
Neither equals the rule above (measured in
``tests/test_engine/test_schedulers.py``), hence this closed-form scheduler.

Official behaviour 16 (effective LR): the official code builds four AdamW groups with
base LRs ``lr, lr, 10·lr, 10·lr`` (backbone, backbone norm, cls head, seg
head), and the whole trainable head sits in a ×10 group, so ``--lr 1e-4``
trains at a peak of 1e-3 while the log prints group 0's (1e-4-scale) value.
Reproduce it with ``optim_wrapper.paramwise_cfg.custom_keys`` giving the
head ``lr_mult=10`` (or set ``lr=1e-3`` directly), then this scheduler.
"""
from typing import List

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmseg.registry import PARAM_SCHEDULERS


def poly_warmup_factor(step: int, warmup_iters: int, warmup_ratio: float,
                       max_iters: int, power: float) -> float:
    """Multiplier of the base value at ``step`` (closed form, §8.1)."""
    if step < warmup_iters:
        return 1 - (1 - step / warmup_iters) * (1 - warmup_ratio)
    return (1 - step / max_iters)**power


@PARAM_SCHEDULERS.register_module()
class PolyWarmupParamScheduler(_ParamScheduler):
    """Linear warmup then un-shifted poly decay of any optimizer parameter.

    Args:
        optimizer: optimizer or optim wrapper.
        param_name: parameter to schedule (``'lr'``).
        max_iters: denominator of the poly decay (30000 VOC, 100000 COCO).
        warmup_iters: warmup length (50 VOC, 200 COCO).
        warmup_ratio: start factor of the warmup (1e-6).
        power: poly power (1.0).
        begin / end: active step range (default ``0`` / ``max_iters``).
        last_step, by_epoch, verbose: as mmengine's schedulers
            (``by_epoch=False`` for ExCEL).
    """

    def __init__(self,
                 optimizer,
                 param_name: str,
                 max_iters: int,
                 warmup_iters: int = 0,
                 warmup_ratio: float = 1e-6,
                 power: float = 1.0,
                 begin: int = 0,
                 end: int = INF,
                 last_step: int = -1,
                 by_epoch: bool = False,
                 verbose: bool = False):
        if max_iters <= 0:
            raise ValueError(f'max_iters must be > 0, got {max_iters}')
        if not 0 <= warmup_iters <= max_iters:
            raise ValueError(f'warmup_iters must be in [0, max_iters], got '
                             f'{warmup_iters} (max_iters={max_iters})')
        if not 0 <= warmup_ratio <= 1:
            raise ValueError(
                f'warmup_ratio must be in [0, 1], got {warmup_ratio}')
        self.max_iters = max_iters
        self.warmup_iters = warmup_iters
        self.warmup_ratio = warmup_ratio
        self.power = power
        if end == INF:
            end = max_iters
        super().__init__(
            optimizer,
            param_name=param_name,
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose)

    def _factor(self) -> float:
        """Closed-form multiplier of the current step (relative to begin)."""
        return poly_warmup_factor(self.last_step, self.warmup_iters,
                                  self.warmup_ratio, self.max_iters,
                                  self.power)

    def _get_value(self) -> List[float]:
        """Values of every group: ``base · factor(step)``."""
        factor = self._factor()
        return [base * factor for base in self.base_values]


@PARAM_SCHEDULERS.register_module()
class PolyWarmupLR(LRSchedulerMixin, PolyWarmupParamScheduler):
    """ExCEL's PolyWarmupAdamW learning-rate rule (see the module doc).

    Config (VOC)::

        param_scheduler = [dict(type='PolyWarmupLR', max_iters=30000,
                                warmup_iters=50, warmup_ratio=1e-6,
                                power=1.0, by_epoch=False)]
    """

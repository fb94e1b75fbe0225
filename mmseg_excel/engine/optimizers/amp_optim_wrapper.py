# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Mixed precision that also runs on the CPU (bf16 autocast).

mmengine's ``AmpOptimWrapper`` asserts that a GPU/NPU/MLU/MUSA is present, so
``tools/train.py --amp`` (and any config with ``type='AmpOptimWrapper'``)
fails on a CPU-only machine although ``torch.autocast('cpu', bfloat16)``
works. ``AnyDeviceAmpOptimWrapper`` is mmengine's wrapper unchanged where an
accelerator is available; on the CPU it autocasts to bf16 with the same
``optim_context`` and no loss scaling (bf16 has fp32's exponent range, so
gradients do not underflow; ``GradScaler`` is kept, disabled, so
``state_dict``/``step``/``unscale_`` behave as in the parent class).
"""
from typing import Union

import torch
from mmengine import device as mm_device
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS


def accelerator_available() -> bool:
    """Whether mmengine's ``AmpOptimWrapper`` accepts this machine."""
    return any(
        getattr(mm_device, f'is_{name}_available', lambda: False)()
        for name in ('cuda', 'npu', 'mlu', 'musa'))


@OPTIM_WRAPPERS.register_module()
class AnyDeviceAmpOptimWrapper(AmpOptimWrapper):
    """``AmpOptimWrapper`` on accelerators; bf16 autocast on the CPU.

    Args:
        loss_scale, dtype, use_fsdp, **kwargs: as ``AmpOptimWrapper``. On the
            CPU ``dtype`` must be ``'bfloat16'`` (the default there) and
            ``loss_scale`` is ignored.
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 use_fsdp: bool = False,
                 **kwargs) -> None:
        if accelerator_available():
            super().__init__(
                loss_scale=loss_scale, dtype=dtype, use_fsdp=use_fsdp,
                **kwargs)
            return
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        if dtype not in (None, torch.bfloat16):
            raise ValueError('CPU mixed precision supports bfloat16 only, '
                             f'got {dtype}')
        # the parent's __init__ asserts an accelerator: skip it
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.loss_scaler = torch.amp.GradScaler('cpu', enabled=False)
        self.cast_dtype = torch.bfloat16

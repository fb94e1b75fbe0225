# Copyright (c) mmseg-excel contributors. All rights reserved.
from .amp_optim_wrapper import AnyDeviceAmpOptimWrapper

__all__ = ['AnyDeviceAmpOptimWrapper']

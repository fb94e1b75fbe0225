# Copyright (c) mmseg-excel contributors. All rights reserved.
from . import metrics  # noqa: F401
from .metrics import WSSSIoUMetric

__all__ = ['WSSSIoUMetric']

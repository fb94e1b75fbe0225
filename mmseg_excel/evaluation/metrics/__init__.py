# Copyright (c) mmseg-excel contributors. All rights reserved.
from .wsss_metric import WSSSIoUMetric

__all__ = ['WSSSIoUMetric']

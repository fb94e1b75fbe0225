# Copyright (c) mmseg-excel contributors. All rights reserved.
from .wsss_visualizer import IGNORE_COLOR, WSSSVisualizer

__all__ = ['WSSSVisualizer', 'IGNORE_COLOR']

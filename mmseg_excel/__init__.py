# Copyright (c) mmseg-excel contributors. All rights reserved.
"""mmseg-excel: weakly supervised semantic segmentation with CLIP for MMSeg 1.x.

Importing this package registers every component (backbones, necks, text
heads, pseudo-label modules, heads, losses, segmentors, datasets, transforms,
hooks, metrics) into mmseg's registries.
"""
from .version import __version__  # noqa: F401
from .utils import checkpoint_compat  # noqa: F401  (patches weights_only)
from . import datasets, engine, evaluation, models, visualization  # noqa: F401,E402

__all__ = ['__version__']

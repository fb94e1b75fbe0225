# Copyright (c) mmseg-excel contributors. All rights reserved.
from . import (backbones, decode_heads, losses, necks, pseudo_labels,  # noqa: F401
               segmentors, text)
from .data_preprocessor import WSSSDataPreProcessor  # noqa: F401

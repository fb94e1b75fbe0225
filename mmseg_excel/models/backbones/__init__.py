# Copyright (c) mmseg-excel contributors. All rights reserved.
from .conv_stem import ConvStem, attach_conv_stem
from .clip_vit import (CLIPFeatures, CLIPLevels, CLIPViTBackbone, SVCCache,
                       interpolate_pos_embed)

__all__ = [
    'CLIPViTBackbone', 'CLIPFeatures', 'ConvStem', 'attach_conv_stem', 'CLIPLevels', 'SVCCache', 'interpolate_pos_embed'
]

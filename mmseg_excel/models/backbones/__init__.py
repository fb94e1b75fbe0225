# Copyright (c) mmseg-excel contributors. All rights reserved.
from .clip_vit import (CLIPFeatures, CLIPViTBackbone, SVCCache,
                       interpolate_pos_embed)

__all__ = [
    'CLIPViTBackbone', 'CLIPFeatures', 'SVCCache', 'interpolate_pos_embed'
]

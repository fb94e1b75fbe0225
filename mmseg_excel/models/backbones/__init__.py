# Copyright (c) mmseg-excel contributors. All rights reserved.
from .clip_vit import (CLIPFeatures, CLIPLevels, CLIPViTBackbone, SVCCache,
                       interpolate_pos_embed)

__all__ = [
    'CLIPViTBackbone', 'CLIPFeatures', 'CLIPLevels', 'SVCCache', 'interpolate_pos_embed'
]

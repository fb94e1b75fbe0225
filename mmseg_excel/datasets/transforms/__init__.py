# Copyright (c) mmseg-excel contributors. All rights reserved.
from .formatting import PackWSSSInputs
from .image_labels import DropGTSegMap, LoadImageLevelLabels
from .loading import LoadWSSSImageFromFile, read_rgb_image
from .pseudo_masks import LoadPseudoSegMap
from .random_offset_pad import RandomOffsetPad
from .random_rescale import RandomRescale

__all__ = [
    'LoadWSSSImageFromFile', 'read_rgb_image', 'LoadImageLevelLabels', 'DropGTSegMap', 'LoadPseudoSegMap',
    'RandomRescale', 'RandomOffsetPad', 'PackWSSSInputs'
]

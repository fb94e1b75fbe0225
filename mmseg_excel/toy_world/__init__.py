# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Toy World: a synthetic WSSS benchmark with exact masks and captions.

Pure numpy/OpenCV (no mmseg import), so the generator and the toy-CLIP
pretraining run without mmcv.
"""
from .captions import make_caption
from .classes import (BACKGROUNDS, CLASS_NAMES, TOY_CLASSES, ToyClass,
                      toy_palette)
from .descriptions import build_descriptions
from .scene import ToyObject, ToyScene, render_scene
from .streams import scene_rng
from .toy_clip import (TOY_CLIP_CHECKPOINT, TOY_CLIP_CONFIG, TOY_CLIP_DIR,
                       TOY_CLIP_NAME, file_sha256, load_toy_clip,
                       register_toy_clip)

__all__ = [
    'BACKGROUNDS', 'CLASS_NAMES', 'TOY_CLASSES', 'ToyClass', 'toy_palette',
    'ToyObject', 'ToyScene', 'render_scene', 'make_caption',
    'build_descriptions', 'scene_rng', 'TOY_CLIP_CHECKPOINT',
    'TOY_CLIP_CONFIG', 'TOY_CLIP_DIR', 'TOY_CLIP_NAME', 'file_sha256',
    'load_toy_clip',
    'register_toy_clip'
]

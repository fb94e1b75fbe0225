# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Pad to a minimum size at a random offset (docs/methods/excel.md §8.1 step
3).

The official crop pads the image to ``max(crop, H) x max(crop, W)`` with raw
black (0) at a uniformly random offset, labels with 255, and then takes a
random crop. Along each axis only one of the two happens, so mmseg's
``RandomCrop`` (crops the axes longer than the crop) followed by this
transform (pads the shorter ones) draws the same placements. Padding here,
before normalisation, keeps the padded pixels black in raw RGB, as in the
official code; the data preprocessor's own padding then has nothing to do.
"""
from typing import Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomOffsetPad(BaseTransform):
    """Pad image and masks to at least ``size`` at a random offset.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``, every key
    in ``seg_fields``. Added keys: ``pad_shape``, ``pad_offset`` (top, left),
    ``img_box`` (``[top, bottom, left, right]`` of the image inside the padded
    canvas, the official ``img_box`` order).

    Args:
        size (int | tuple[int, int]): Minimum ``(h, w)`` after padding.
        pad_val (float): Image padding value (raw pixel scale). Defaults to 0.
        seg_pad_val (int): Mask padding value. Defaults to 255.
    """

    def __init__(self,
                 size: Union[int, Tuple[int, int]],
                 pad_val: float = 0,
                 seg_pad_val: int = 255) -> None:
        super().__init__()
        if isinstance(size, int):
            size = (size, size)
        if len(size) != 2 or min(size) <= 0:
            raise ValueError(f'size must be a positive (h, w), got {size}')
        self.size = (int(size[0]), int(size[1]))
        self.pad_val = pad_val
        self.seg_pad_val = seg_pad_val

    @cache_randomness
    def _random_offset(self, pad_h: int, pad_w: int) -> Tuple[int, int]:
        """Draw the (top, left) offset of the image inside the canvas."""
        return (int(np.random.randint(pad_h + 1)),
                int(np.random.randint(pad_w + 1)))

    @staticmethod
    def _pad(arr: np.ndarray, top: int, left: int, out_hw: Tuple[int, int],
             value: float) -> np.ndarray:
        """Place ``arr`` at (top, left) on a constant canvas."""
        h, w = arr.shape[:2]
        canvas = np.full(out_hw + arr.shape[2:], value, dtype=arr.dtype)
        canvas[top:top + h, left:left + w, ...] = arr
        return canvas

    def transform(self, results: dict) -> dict:
        """Pad the image and every mask of ``seg_fields``."""
        img = results['img']
        h, w = img.shape[:2]
        out_hw = (max(h, self.size[0]), max(w, self.size[1]))
        top, left = self._random_offset(out_hw[0] - h, out_hw[1] - w)
        if out_hw != (h, w):
            results['img'] = self._pad(img, top, left, out_hw, self.pad_val)
            for key in results.get('seg_fields', []):
                if results.get(key) is not None:
                    results[key] = self._pad(results[key], top, left, out_hw,
                                             self.seg_pad_val)
        results['img_shape'] = out_hw
        results['pad_shape'] = out_hw
        results['pad_offset'] = (top, left)
        results['img_box'] = (top, top + h, left, left + w)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'pad_val={self.pad_val}, seg_pad_val={self.seg_pad_val})')

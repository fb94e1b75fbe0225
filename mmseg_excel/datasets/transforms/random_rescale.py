# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Random rescale by a factor of the image's own size (docs/methods/excel.md
§8.1 step 1).

The official augmentation draws ``f ~ U[0.5, 2.0]`` per image and resizes to
``int(f * W) x int(f * H)`` (PIL bilinear for the image, nearest for masks).
mmcv's ``RandomResize`` scales towards a fixed target scale instead, so this
transform only draws the size and delegates the resizing to mmseg's
``Resize`` (which also resizes every entry of ``seg_fields``).
"""
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from mmseg.datasets.transforms import Resize
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class RandomRescale(BaseTransform):
    """Resize by a random factor of the current image size.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``, every key
    in ``seg_fields``. Added keys: ``scale``, ``scale_factor``,
    ``keep_ratio``.

    Args:
        ratio_range (tuple[float, float]): Factor drawn uniformly from
            ``[min, max)``. Defaults to (0.5, 2.0).
        backend (str): mmcv resize backend. ``'pillow'`` reproduces the
            official PIL resize (antialiased when shrinking). Defaults to
            'pillow'.
        interpolation (str): Image interpolation; masks always use nearest.
            Defaults to 'bilinear'.
    """

    def __init__(self,
                 ratio_range: Tuple[float, float] = (0.5, 2.0),
                 backend: str = 'pillow',
                 interpolation: str = 'bilinear') -> None:
        super().__init__()
        if len(ratio_range) != 2 or not 0 < ratio_range[0] <= ratio_range[1]:
            raise ValueError('ratio_range must be (min, max) with '
                             f'0 < min <= max, got {ratio_range}')
        self.ratio_range = tuple(float(r) for r in ratio_range)
        self.resize = Resize(
            scale=(1, 1),
            keep_ratio=False,
            backend=backend,
            interpolation=interpolation)

    @cache_randomness
    def _random_ratio(self) -> float:
        """Draw the rescale factor."""
        lo, hi = self.ratio_range
        return float(np.random.uniform(lo, hi))

    @staticmethod
    def target_size(hw: Tuple[int, int], ratio: float) -> Tuple[int, int]:
        """New ``(w, h)`` as the official code: ``int(f * W), int(f * H)``."""
        h, w = hw
        return max(int(w * ratio), 1), max(int(h * ratio), 1)

    def transform(self, results: dict) -> Optional[dict]:
        """Rescale image and masks."""
        ratio = self._random_ratio()
        self.resize.scale = self.target_size(results['img'].shape[:2], ratio)
        return self.resize(results)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ratio_range={self.ratio_range}, '
                f'backend={self.resize.backend!r}, '
                f'interpolation={self.resize.interpolation!r})')

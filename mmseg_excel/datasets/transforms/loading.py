# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Image loading with defined results for the inputs mmcv decodes wrongly
(README.md, "Bad input").

mmcv's ``LoadImageFromFile`` with ``imdecode_backend='pillow'`` (the
official ExCEL/CLIP-ES decoder) converts a 16-bit grayscale PNG with PIL's
``convert('RGB')``, which clips every value above 255: an ordinary 16-bit
image comes back almost entirely white. :class:`LoadWSSSImageFromFile`
rescales 16-bit images to 8 bits instead (``v >> 8``, as OpenCV's
``imread`` does), refuses float images with an
error naming the file, and leaves every other image to mmcv unchanged:
grayscale is replicated to three channels, the alpha channel of RGBA / LA
images is dropped as mmcv does.
"""
import io
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmseg.registry import TRANSFORMS

#: PIL modes of 16-bit (or 32-bit integer) single-channel images
_WIDE_INT_MODES = ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I')


def decode_wide_gray(img, path: str) -> Optional[np.ndarray]:
    """A 16-bit PIL image as (H, W, 3) uint8 (``v >> 8``); None for
    images of other modes. Raises ``ValueError`` naming ``path`` for float
    images and for integer images beyond 16 bits."""
    if img.mode == 'F':
        raise ValueError(f'{path}: floating-point image (PIL mode F) is not '
                         'an RGB/grayscale image; convert it to 8 or 16 bit')
    if img.mode not in _WIDE_INT_MODES:
        return None
    arr = np.asarray(img).astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise ValueError(f'{path}: integer image with values beyond 16 bits '
                         f'({arr.min()}..{arr.max()})')
    gray = (arr >> 8).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


@TRANSFORMS.register_module()
class LoadWSSSImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` (same arguments) with 16-bit images rescaled
    to 8 bits on the pillow backend (mmcv clips them to 255) and float
    images refused; see the module docstring."""

    def transform(self, results: dict) -> Optional[dict]:
        if self.imdecode_backend != 'pillow' or self.color_type != 'color' \
                or self.file_client_args is not None:
            return super().transform(results)
        filename = results['img_path']
        try:
            img_bytes = fileio.get(filename, backend_args=self.backend_args)
            from PIL import Image
            with Image.open(io.BytesIO(img_bytes)) as pil:
                img = decode_wide_gray(pil, filename)
            if img is None:
                img = mmcv.imfrombytes(
                    img_bytes, flag=self.color_type, backend='pillow')
        except Exception:
            if self.ignore_empty:
                return None
            raise
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


def read_rgb_image(path: str) -> np.ndarray:
    """(H, W, 3) writable uint8 RGB of an image file, with PIL (16-bit images
    rescaled as by :class:`LoadWSSSImageFromFile`; grayscale replicated,
    alpha dropped); errors name ``path``."""
    from PIL import Image
    try:
        with Image.open(path) as pil:
            img = decode_wide_gray(pil, path)
            if img is None:
                img = np.array(pil.convert('RGB'))  # a writable copy
    except OSError as e:
        if path in str(e):
            raise
        raise OSError(f'cannot read image {path}: {type(e).__name__}: '
                      f'{e}') from e
    return np.ascontiguousarray(img)

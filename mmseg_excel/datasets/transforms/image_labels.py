# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Image-level labels inside the data pipeline (docs/methods/excel.md §8.1).

:class:`LoadImageLevelLabels` turns a sample's class ids (from the labels
file, or derived from its mask) into the multi-hot ``gt_cls_label``. In a
training pipeline it leaves no pixel label behind, so nothing downstream can
use one. :class:`DropGTSegMap` removes a mask that was kept on purpose (the
documented ``cat_max_ratio`` crop switch) once it is no longer needed.
"""
import os.path as osp
from typing import List, Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS
from ..image_labels import class_ids_from_mask, multi_hot


def read_class_mask(path: str,
                    backend_args: Optional[dict] = None,
                    imdecode_backend: str = 'pillow') -> np.ndarray:
    """Read a single-channel class mask (VOC palette or grey PNG).

    Args:
        path (str): Mask file.
        backend_args (dict, optional): mmengine file backend arguments.
        imdecode_backend (str): Decoder of :func:`mmcv.imfrombytes`.

    Returns:
        np.ndarray: ``(H, W)`` uint8 mask (palette indices for 'P' PNGs).

    Raises:
        FileNotFoundError: The file does not exist.
        OSError: The file cannot be decoded (truncated, corrupt).
        ValueError: The file is not a single-channel image.
    """
    try:
        img_bytes = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError as e:
        raise FileNotFoundError(f'mask file not found: {path}') from e
    try:
        mask = mmcv.imfrombytes(
            img_bytes, flag='unchanged', backend=imdecode_backend)
    except (OSError, SyntaxError, ValueError) as e:  # truncated / corrupt
        raise OSError(f'cannot decode mask file {path}: '
                      f'{type(e).__name__}: {e}') from e
    if mask is None:
        raise ValueError(f'{path}: could not decode the mask image')
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise ValueError(f'{path}: a class mask must be a single-channel '
                         f'(H, W) image, got shape {mask.shape}')
    return mask


@TRANSFORMS.register_module()
class LoadImageLevelLabels(BaseTransform):
    """Set ``gt_cls_label``, the multi-hot over foreground classes.

    Source of the class ids, in this order:

    1. ``results['cls_label_ids']`` (the dataset's ``cls_labels_file``);
    2. ``results['gt_seg_map']`` if a previous transform loaded the mask;
    3. the mask at ``results['seg_map_path']``, read here.

    Mask ids ``0`` (background) and ``ignore_index`` are excluded; any other
    id outside ``[0, num_classes)`` is an error naming the mask file.

    With ``keep_mask=False`` (training) the pixel mask is dropped after the
    labels are computed: the output holds no ``gt_seg_map``, and when the ids
    come from a labels file the mask is not even read. ``keep_mask=True``
    (validation/test, or the documented ``cat_max_ratio`` crop switch)
    leaves the mask in ``gt_seg_map`` / ``seg_fields`` like mmseg's
    ``LoadAnnotations``.

    Required keys: ``num_classes`` (set by the WSSS datasets) unless given
    here; ``seg_map_path`` when the ids come from the mask.
    Added keys: ``gt_cls_label`` (float32, ``num_classes - 1``),
    ``cls_label_ids``; ``gt_seg_map`` only with ``keep_mask``.

    Args:
        keep_mask (bool | str): Keep the pixel mask in the results.
            ``'auto'``: keep it when the sample's ``seg_map_path`` names an
            existing file (a custom dataset whose training images may lack
            masks, scored where they exist). Defaults to False.
        num_classes (int, optional): Classes incl. background; defaults to
            ``results['num_classes']``.
        ignore_index (int): Ignored mask value. Defaults to 255.
        imdecode_backend (str): Mask decoder. Defaults to 'pillow'.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 keep_mask: bool = False,
                 num_classes: Optional[int] = None,
                 ignore_index: int = 255,
                 imdecode_backend: str = 'pillow',
                 backend_args: Optional[dict] = None) -> None:
        super().__init__()
        if keep_mask not in (True, False, 'auto'):
            raise ValueError(f"keep_mask must be True, False or 'auto', got "
                             f'{keep_mask!r}')
        self.keep_mask = keep_mask
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args.copy() if backend_args else None

    def _load_mask(self, results: dict) -> np.ndarray:
        """Read the mask of ``seg_map_path`` and apply the dataset label map."""
        path = results.get('seg_map_path')
        if path is None:
            raise KeyError(
                f'{results.get("img_path", "<sample>")}: no image-level labels '
                '(cls_label_ids) and no seg_map_path to derive them from')
        mask = read_class_mask(path, self.backend_args, self.imdecode_backend)
        if results.get('reduce_zero_label', False):
            raise ValueError(f'{path}: reduce_zero_label is not supported by '
                             'WSSS datasets (class 0 is background)')
        label_map = results.get('label_map')
        if label_map:
            self._check_ids(mask, path, results)
            mapped = mask.copy()
            for old_id, new_id in label_map.items():
                mapped[mask == old_id] = new_id
            mask = mapped
        return mask

    def _num_classes(self, results: dict) -> int:
        """Number of classes incl. background for this sample."""
        n = self.num_classes or results.get('num_classes')
        if n is None:
            raise KeyError('LoadImageLevelLabels needs num_classes: set it in '
                           'the transform or use a WSSS dataset, which adds '
                           "results['num_classes']")
        return int(n)

    def _check_ids(self, mask: np.ndarray, path: str, results: dict) -> None:
        """Range check against the dataset's original classes."""
        n = len(results['label_map'])
        class_ids_from_mask(mask, n, self.ignore_index, source=path)

    def _map_ids(self, ids: List[int], results: dict) -> List[int]:
        """Apply the dataset label map (custom class subsets) to class ids."""
        label_map = results.get('label_map')
        if not label_map:
            return ids
        out = {label_map.get(i, i) for i in ids}
        return sorted(i for i in out if i not in (0, self.ignore_index))

    def transform(self, results: dict) -> dict:
        """Compute ``gt_cls_label``; drop or keep the mask."""
        num_classes = self._num_classes(results)
        keep = self.keep_mask
        if keep == 'auto':
            path = results.get('seg_map_path')
            keep = results.get('gt_seg_map') is not None or bool(
                path and osp.isfile(path))
        mask = results.get('gt_seg_map')
        source = results.get('seg_map_path', '<gt_seg_map>')
        if results.get('cls_label_ids') is not None:
            ids = self._map_ids(list(results['cls_label_ids']), results)
            if keep and mask is None:
                mask = self._load_mask(results)
        else:
            if mask is None:
                mask = self._load_mask(results)
            ids = class_ids_from_mask(
                mask, num_classes, self.ignore_index, source=source)
        results['cls_label_ids'] = ids
        results['gt_cls_label'] = multi_hot(ids, num_classes)

        if keep:
            results['gt_seg_map'] = mask
            seg_fields = results.setdefault('seg_fields', [])
            if 'gt_seg_map' not in seg_fields:
                seg_fields.append('gt_seg_map')
        else:
            _drop_seg_map(results, 'gt_seg_map')
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(keep_mask={self.keep_mask}, '
                f'num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index})')


def _drop_seg_map(results: dict, key: str) -> None:
    """Remove ``key`` from the results and from ``seg_fields``."""
    results.pop(key, None)
    if key in results.get('seg_fields', []):
        results['seg_fields'] = [k for k in results['seg_fields'] if k != key]


@TRANSFORMS.register_module()
class DropGTSegMap(BaseTransform):
    """Remove the ground-truth pixel mask from a training sample.

    Used right after mmseg's ``RandomCrop(cat_max_ratio=0.75)`` when the
    official VOC crop selection (docs/methods/excel.md §8.1 step 3, §11 #17) is
    switched
    on: the crop reads the mask, nothing after it may.

    Args:
        keys (tuple[str]): Result keys to drop. Defaults to
            ``('gt_seg_map',)``.
    """

    def __init__(self, keys: tuple = ('gt_seg_map', )) -> None:
        super().__init__()
        self.keys = tuple(keys)

    def transform(self, results: dict) -> dict:
        """Drop the keys."""
        for key in self.keys:
            _drop_seg_map(results, key)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(keys={self.keys})'

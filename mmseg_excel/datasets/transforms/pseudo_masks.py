# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Load a pseudo mask instead of the ground truth (CLIP-ES stage 3).

CLIP-ES (docs/methods/clip_es.md §6–7) trains a segmentation model on pseudo
masks
written by stage 2 (``255`` = low-confidence pixel, ignored by the loss).
The WSSS datasets add ``pseudo_seg_map_path`` to each sample when built with
``pseudo_seg_map_dir``; this transform reads that file. Validation datasets
are built without the option and stay on the ground truth.
"""
from typing import Optional

from mmcv.transforms import BaseTransform

from mmseg.registry import TRANSFORMS
from .image_labels import read_class_mask


@TRANSFORMS.register_module()
class LoadPseudoSegMap(BaseTransform):
    """Read ``results['pseudo_seg_map_path']`` into a segmentation field.

    By default the mask goes to ``pseudo_seg_map`` (packed as
    ``pseudo_sem_seg`` by ``PackWSSSInputs``). ``as_gt=True`` puts it into
    ``gt_seg_map`` instead, so unmodified mmseg models (DeepLab baselines)
    train on it through ``PackSegInputs``; that is refused if a ground-truth
    mask is already loaded. The key is added to ``seg_fields`` so mmseg's
    ``Resize``/``RandomFlip``/``RandomCrop`` and ``RandomRescale`` /
    ``RandomOffsetPad`` transform it with the image.

    Args:
        as_gt (bool): Store into ``gt_seg_map``. Defaults to False.
        num_classes (int, optional): If given (or ``results['num_classes']``
            exists), values other than 255 must lie in ``[0, num_classes)``.
        ignore_index (int): Ignored value. Defaults to 255.
        imdecode_backend (str): Mask decoder. Defaults to 'pillow'.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 as_gt: bool = False,
                 num_classes: Optional[int] = None,
                 ignore_index: int = 255,
                 imdecode_backend: str = 'pillow',
                 backend_args: Optional[dict] = None) -> None:
        super().__init__()
        self.as_gt = as_gt
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args.copy() if backend_args else None

    def transform(self, results: dict) -> dict:
        """Load the pseudo mask."""
        path = results.get('pseudo_seg_map_path')
        if path is None:
            raise KeyError(
                f'{results.get("img_path", "<sample>")}: no pseudo_seg_map_path'
                '; build the dataset with pseudo_seg_map_dir=...')
        mask = read_class_mask(path, self.backend_args, self.imdecode_backend)
        img = results.get('img')
        if img is not None and tuple(img.shape[:2]) != tuple(
                results.get('ori_shape', img.shape[:2])):
            raise ValueError(f'{path}: LoadPseudoSegMap must run before any '
                             'geometric transform')
        if img is not None and mask.shape != img.shape[:2]:
            raise ValueError(f'{path}: pseudo mask shape {mask.shape} differs '
                             f'from the image shape {img.shape[:2]} '
                             f'({results.get("img_path")})')
        num_classes = self.num_classes or results.get('num_classes')
        if num_classes is not None:
            bad = (mask != self.ignore_index) & (mask >= num_classes)
            if bad.any():
                raise ValueError(f'{path}: pseudo mask holds class id(s) '
                                 f'{sorted(set(mask[bad].tolist()))} outside '
                                 f'[0, {num_classes - 1}]')
        key = 'gt_seg_map' if self.as_gt else 'pseudo_seg_map'
        if self.as_gt and 'gt_seg_map' in results:
            raise ValueError(
                f'{path}: a ground-truth mask is already loaded into '
                'gt_seg_map; as_gt=True would overwrite it')
        results[key] = mask
        seg_fields = results.setdefault('seg_fields', [])
        if key not in seg_fields:
            seg_fields.append(key)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(as_gt={self.as_gt}, '
                f'num_classes={self.num_classes})')

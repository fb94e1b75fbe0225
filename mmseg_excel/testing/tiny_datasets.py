# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Tiny VOC- and COCO-layout WSSS datasets written to a folder, for tests.

Every image gets 0-3 objects in disjoint cells of a 2x2 grid, so the set of
foreground class ids in its mask is known by construction (returned in
``labels``) and does not depend on the code that derives it. Each object is a
rectangle of its class id inside a 1-pixel ring of ``255`` (VOC-style
boundary). The first training image holds only background and ignore pixels
(``bg_only_id``, label ``[]``). VOC masks alternate between palette ('P') and
grey ('L') PNGs; the COCO set has a grey-scale JPEG (``gray_id``).
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from mmseg_excel.datasets.voc_wsss import voc_colormap


def write_mask(path: str, mask: np.ndarray, mode: str = 'L') -> None:
    """Write a uint8 class mask as a grey ('L') or VOC palette ('P') PNG."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    img = Image.fromarray(np.asarray(mask, dtype=np.uint8), mode='L')
    if mode == 'P':
        img = img.convert('P')
        img.putpalette([v for c in voc_colormap(256) for v in c])
    elif mode != 'L':
        raise ValueError(f'mode must be "L" or "P", got {mode!r}')
    img.save(path)


def _draw_sample(rng: np.random.Generator, size: Tuple[int, int],
                 num_classes: int, bg_only: bool,
                 gray: bool) -> Tuple[np.ndarray, np.ndarray, List[int]]:
    """Image (RGB uint8), mask and the foreground ids drawn in it."""
    h, w = size
    if min(h, w) < 16:
        raise ValueError(f'tiny images need h, w >= 16, got {size}')
    img = rng.integers(40, 90, size=(h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    cells = [(0, 0), (0, 1), (1, 0), (1, 1)]
    ch, cw = h // 2, w // 2
    if bg_only:
        # an ignore-only blob: the label must stay empty
        y0, x0 = ch // 4, cw // 4
        mask[y0:y0 + ch // 2, x0:x0 + cw // 2] = 255
        chosen: List[int] = []
        objects = []
    else:
        n_obj = int(rng.integers(1, 4))
        cell_idx = rng.choice(len(cells), size=n_obj, replace=False)
        objects = [(cells[i], int(rng.integers(1, num_classes)))
                   for i in cell_idx]
        chosen = sorted({c for _, c in objects})
    for (cy, cx), cls in objects:
        oh = int(rng.integers(ch // 2, ch - 2))
        ow = int(rng.integers(cw // 2, cw - 2))
        y0 = cy * ch + int(rng.integers(1, ch - oh))
        x0 = cx * cw + int(rng.integers(1, cw - ow))
        mask[y0 - 1:y0 + oh + 1, x0 - 1:x0 + ow + 1] = 255
        mask[y0:y0 + oh, x0:x0 + ow] = cls
        colour = np.array([(37 * cls) % 256, (91 * cls) % 256,
                           (173 * cls) % 256],
                          dtype=np.uint8)
        img[y0:y0 + oh, x0:x0 + ow] = colour
    if gray:
        img = img.mean(axis=2).astype(np.uint8)
    return img, mask, chosen


def _write_split(path: str, ids: Sequence[str]) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(''.join(f'{i}\n' for i in ids))


def make_tiny_voc(root: str,
                  num_train: int = 6,
                  num_val: int = 4,
                  size: Tuple[int, int] = (64, 80),
                  seed: int = 0,
                  num_classes: int = 21) -> Dict:
    """Write a tiny PASCAL VOC 2012 (+aug) layout under ``root``.

    Layout: ``JPEGImages/<id>.jpg``, ``SegmentationClassAug/<id>.png``,
    ``ImageSets/Segmentation/{train_aug,train,val}.txt`` (``train`` = the
    first half of ``train_aug``). Ids look like ``2007_000000``.

    Args:
        root (str): Dataset root (created).
        num_train (int): Images in ``train_aug``.
        num_val (int): Images in ``val``.
        size (tuple[int, int]): Image ``(h, w)``.
        seed (int): Random seed.
        num_classes (int): Classes incl. background used for the masks.

    Returns:
        dict: ``root``, ``splits`` (split name -> ids), ``labels`` (id ->
        sorted foreground ids), ``img_paths``, ``mask_paths``,
        ``bg_only_id``, ``split_files`` (split name -> path).
    """
    if num_train < 1:
        raise ValueError('num_train must be >= 1')
    rng = np.random.default_rng(seed)
    train_ids = [f'2007_{i:06d}' for i in range(num_train)]
    val_ids = [f'2008_{i:06d}' for i in range(num_val)]
    labels, img_paths, mask_paths = {}, {}, {}
    for k, img_id in enumerate(train_ids + val_ids):
        img, mask, chosen = _draw_sample(rng, size, num_classes, k == 0, False)
        img_paths[img_id] = osp.join(root, 'JPEGImages', img_id + '.jpg')
        mask_paths[img_id] = osp.join(root, 'SegmentationClassAug',
                                      img_id + '.png')
        os.makedirs(osp.dirname(img_paths[img_id]), exist_ok=True)
        Image.fromarray(img).save(img_paths[img_id], quality=95)
        write_mask(mask_paths[img_id], mask, 'P' if k % 2 == 0 else 'L')
        labels[img_id] = chosen
    splits = dict(
        train_aug=train_ids,
        train=train_ids[:max(1, num_train // 2)],
        val=val_ids)
    split_files = {}
    for name, ids in splits.items():
        split_files[name] = osp.join(root, 'ImageSets', 'Segmentation',
                                     f'{name}.txt')
        _write_split(split_files[name], ids)
    return dict(
        root=root,
        splits=splits,
        labels=labels,
        img_paths=img_paths,
        mask_paths=mask_paths,
        bg_only_id=train_ids[0],
        split_files=split_files)


def make_tiny_coco(root: str,
                   num_train: int = 6,
                   num_val: int = 4,
                   size: Tuple[int, int] = (64, 80),
                   seed: int = 0,
                   num_classes: int = 81,
                   gray_index: Optional[int] = 1) -> Dict:
    """Write a tiny COCO 2014 layout (VOC-style masks) under ``root``.

    Layout: ``JPEGImages/{train,val}/COCO_{train,val}2014_<12 digits>.jpg``,
    ``SegmentationClass/{train,val}/<12 digits>.png``,
    ``ImageSets/{train,val}.txt`` (full image names).

    Args:
        root (str): Dataset root (created).
        num_train (int): Training images.
        num_val (int): Validation images.
        size (tuple[int, int]): Image ``(h, w)``.
        seed (int): Random seed.
        num_classes (int): Classes incl. background used for the masks.
        gray_index (int, optional): Index of the training image saved as a
            grey-scale JPEG (None: none).

    Returns:
        dict: as :func:`make_tiny_voc`, plus ``gray_id``.
    """
    if num_train < 1:
        raise ValueError('num_train must be >= 1')
    rng = np.random.default_rng(seed)
    numbers = rng.choice(10**6, size=num_train + num_val, replace=False)
    train_ids = [f'COCO_train2014_{n:012d}' for n in numbers[:num_train]]
    val_ids = [f'COCO_val2014_{n:012d}' for n in numbers[num_train:]]
    labels, img_paths, mask_paths = {}, {}, {}
    gray_id = None
    for k, img_id in enumerate(train_ids + val_ids):
        subset = 'train' if k < num_train else 'val'
        gray = gray_index is not None and k == gray_index
        img, mask, chosen = _draw_sample(rng, size, num_classes, k == 0, gray)
        if gray:
            gray_id = img_id
        img_paths[img_id] = osp.join(root, 'JPEGImages', subset,
                                     img_id + '.jpg')
        mask_paths[img_id] = osp.join(root, 'SegmentationClass', subset,
                                      img_id[-12:] + '.png')
        os.makedirs(osp.dirname(img_paths[img_id]), exist_ok=True)
        Image.fromarray(img).save(img_paths[img_id], quality=95)
        write_mask(mask_paths[img_id], mask, 'L')
        labels[img_id] = chosen
    splits = dict(train=train_ids, val=val_ids)
    split_files = {}
    for name, ids in splits.items():
        split_files[name] = osp.join(root, 'ImageSets', f'{name}.txt')
        _write_split(split_files[name], ids)
    return dict(
        root=root,
        splits=splits,
        labels=labels,
        img_paths=img_paths,
        mask_paths=mask_paths,
        bg_only_id=train_ids[0],
        gray_id=gray_id,
        split_files=split_files)


def write_voc_annotation(path: str,
                         objects: Sequence[Tuple[str, int]],
                         size: Tuple[int, int] = (64, 80)) -> None:
    """Write a PASCAL VOC ``Annotations/<id>.xml`` (the official layout).

    Args:
        path (str): Output file; folders are created.
        objects (Sequence[tuple[str, int]]): ``(class name, difficult)`` per
            ``<object>``, in file order (names may repeat).
        size (tuple[int, int]): Image ``(h, w)`` stored in ``<size>``.
    """
    h, w = size
    objs = ''.join(
        f'<object><name>{name}</name><pose>Unspecified</pose>'
        f'<truncated>{k % 2}</truncated><difficult>{int(diff)}</difficult>'
        f'<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>{w // 2}</xmax>'
        f'<ymax>{h // 2}</ymax></bndbox></object>\n'
        for k, (name, diff) in enumerate(objects))
    text = (f'<annotation>\n<folder>VOC2012</folder>\n'
            f'<filename>{osp.splitext(osp.basename(path))[0]}.jpg</filename>\n'
            f'<size><width>{w}</width><height>{h}</height><depth>3</depth>'
            f'</size>\n<segmented>1</segmented>\n{objs}</annotation>\n')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


def write_coco_label_list(path: str,
                          labels: Dict[str, Sequence[int]],
                          suffix: str = '.jpg') -> None:
    """Write a COCO label list in the layout of CLIP-ES ``coco14/train.txt``:
    ``<name><suffix> <i> <i> ...`` with 0-based category indices
    (``class id - 1``)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        for name, ids in labels.items():
            f.write(' '.join([name + suffix] + [str(i - 1) for i in ids]) +
                    '\n')

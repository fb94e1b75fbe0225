# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Image-level labels of WSSS datasets (EXCEL.md §8.1 "Image-level labels").

The only supervision a WSSS training sample carries is the set of foreground
classes present in the image. This module derives that set from a VOC-style
mask (class ids ``0`` = background, ``1..K`` = foreground, ``255`` = ignore)
and reads/writes the *labels file* of ``tools/dataset_converters``.

Labels file format (JSON, UTF-8)::

    {"format": "mmseg_excel.image_labels/v1",
     "classes": ["background", "aeroplane", ...],   # the dataset's classes
     "labels": {"2007_000032": [1, 15], "2007_000039": [], ...}}

``labels`` maps every image id (the name in the split file, e.g.
``2007_000032`` for VOC, ``COCO_train2014_000000000009`` for COCO) to the
sorted list of **mask class ids** present in its mask: foreground only, so
background ``0`` and ignore ``255`` never appear; an image whose mask holds
only background/ignore pixels maps to ``[]``. A plain
``{image id: [class ids]}`` object (no header) is accepted as well.

The multi-hot vector fed to the model (``gt_cls_label``) has one entry per
foreground class: entry ``c - 1`` is 1 when class id ``c`` is present, as the
official ``cls_labels_onehot.npy`` (length ``K_fg``, no background entry).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

LABELS_FILE_FORMAT = 'mmseg_excel.image_labels/v1'


def class_ids_from_mask(mask: np.ndarray,
                        num_classes: int,
                        ignore_index: int = 255,
                        source: str = '<array>') -> List[int]:
    """Foreground class ids present in a VOC-style mask.

    Args:
        mask (np.ndarray): ``(H, W)`` integer mask.
        num_classes (int): Number of classes including background.
        ignore_index (int): Ignored label value. Defaults to 255.
        source (str): File name used in error messages.

    Returns:
        list[int]: Sorted ids in ``[1, num_classes)`` present in the mask.

    Raises:
        ValueError: The mask is not 2-D, or holds a class id that is neither
            ``ignore_index`` nor in ``[0, num_classes)``.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'{source}: a class mask must be a single-channel '
                         f'(H, W) image, got shape {mask.shape}')
    values = np.unique(mask)
    values = values[values != ignore_index]
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        raise ValueError(
            f'{source}: mask holds class id(s) {bad.tolist()} outside '
            f'[0, {num_classes - 1}] (num_classes={num_classes}, '
            f'ignore_index={ignore_index})')
    return [int(v) for v in values if v != 0]


def multi_hot(class_ids: Sequence[int], num_classes: int) -> np.ndarray:
    """Multi-hot vector over foreground classes (entry ``c - 1`` for id c).

    Args:
        class_ids (Sequence[int]): Foreground ids in ``[1, num_classes)``.
        num_classes (int): Number of classes including background.

    Returns:
        np.ndarray: float32 vector of length ``num_classes - 1``.
    """
    out = np.zeros(num_classes - 1, dtype=np.float32)
    ids = np.asarray(list(class_ids), dtype=np.int64)
    if ids.size:
        if ids.min() < 1 or ids.max() >= num_classes:
            raise ValueError(f'foreground class ids must lie in '
                             f'[1, {num_classes - 1}], got {ids.tolist()}')
        out[ids - 1] = 1.0
    return out


def write_labels_file(path: str,
                      labels: Mapping[str, Sequence[int]],
                      classes: Optional[Sequence[str]] = None) -> None:
    """Write a labels file (format in the module docstring) atomically.

    Args:
        path (str): Output ``.json`` path; parent folders are created.
        labels (Mapping[str, Sequence[int]]): image id -> class ids.
        classes (Sequence[str], optional): Class names stored in the header.
    """
    payload = dict(
        format=LABELS_FILE_FORMAT,
        classes=list(classes) if classes is not None else None,
        labels={
            k: sorted(int(c) for c in v)
            for k, v in labels.items()
        })
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(payload, f, indent=0, separators=(',', ':'))
    os.replace(tmp, path)


def read_labels_file(
        path: str,
        num_classes: Optional[int] = None,
        classes: Optional[Sequence[str]] = None) -> Dict[str, List[int]]:
    """Read a labels file written by ``tools/dataset_converters``.

    Args:
        path (str): The ``.json`` labels file.
        num_classes (int, optional): If given, every id must lie in
            ``[1, num_classes)``.
        classes (Sequence[str], optional): If given and the file stores class
            names, they must be equal (guards against a COCO file used for
            VOC).

    Returns:
        dict[str, list[int]]: image id -> sorted foreground class ids.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not a labels file or holds bad ids.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'labels file not found: {path}')
    try:
        with open(path, encoding='utf-8') as f:
            payload = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not a JSON labels file ({e})') from e
    if not isinstance(payload, dict):
        raise ValueError(f'{path}: expected a JSON object, '
                         f'got {type(payload).__name__}')
    if 'labels' in payload and 'format' in payload:
        if payload['format'] != LABELS_FILE_FORMAT:
            raise ValueError(f'{path}: unknown labels file format '
                             f'{payload["format"]!r} (expected '
                             f'{LABELS_FILE_FORMAT!r})')
        stored = payload.get('classes')
        if classes is not None and stored is not None \
                and list(stored) != list(classes):
            raise ValueError(
                f'{path}: written for classes {list(stored)[:4]}... '
                f'({len(stored)}), but the dataset has '
                f'{list(classes)[:4]}... ({len(classes)})')
        labels = payload['labels']
    else:
        labels = payload
    out: Dict[str, List[int]] = {}
    for key, ids in labels.items():
        if not isinstance(ids, list) or not all(
                isinstance(i, int) for i in ids):
            raise ValueError(f'{path}: labels of {key!r} must be a list of '
                             f'integer class ids, got {ids!r}')
        if num_classes is not None:
            bad = [i for i in ids if i < 1 or i >= num_classes]
            if bad:
                raise ValueError(
                    f'{path}: image {key!r} lists class id(s) {bad} outside '
                    f'the foreground range [1, {num_classes - 1}]')
        out[str(key)] = sorted(ids)
    return out

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Image-level labels of WSSS datasets (docs/methods/excel.md §8.1 "Image-level
labels").

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

The official label sources are read and written here as well
(``tools/dataset_converters/README.md``):

* ``cls_labels_onehot.npy`` — the file every official WSSS repository reads:
  ``np.save`` of a pickled dict ``image name → float32 one-hot`` of length
  ``K_fg`` (:func:`write_onehot_npy`, :func:`read_onehot_npy`;
  :func:`read_labels_file` accepts it too);
* PASCAL VOC ``Annotations/<id>.xml`` — the distinct ``<object><name>`` of the
  image, difficult and truncated objects included (:func:`read_voc_xml_labels`);
* the COCO label list (``coco14/train.txt`` of CLIP-ES): one line per image,
  ``<image name>[.jpg] <id> <id> ...`` with 0-based category indices 0..79
  (:func:`read_coco_label_list`).
"""
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

LABELS_FILE_FORMAT = 'mmseg_excel.image_labels/v1'
NPY_MAGIC = b'\x93NUMPY'


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

    The official ``cls_labels_onehot.npy`` (recognised by its NumPy magic,
    whatever its name) is read by :func:`read_onehot_npy`.

    Args:
        path (str): The ``.json`` labels file (or ``.npy`` one-hot file).
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
    if is_npy_file(path):
        return read_onehot_npy(path, num_classes=num_classes)
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


def check_labels_cover(labels: Mapping[str, Sequence[int]],
                       ids: Sequence[str], where: str, split: str) -> None:
    """Raise ``KeyError`` naming the source and the first image of ``split``
    that ``labels`` has no entry for."""
    missing = [i for i in ids if i not in labels]
    if missing:
        raise KeyError(f'{where} has no entry for {len(missing)} image(s) '
                       f'of {split}, first: {missing[0]!r}')


def is_npy_file(path: str) -> bool:
    """Whether ``path`` starts with the NumPy ``.npy`` magic."""
    with open(path, 'rb') as f:
        return f.read(len(NPY_MAGIC)) == NPY_MAGIC


def write_onehot_npy(path: str, labels: Mapping[str, Sequence[int]],
                     num_classes: int) -> None:
    """Write the official ``cls_labels_onehot.npy`` atomically.

    ``np.save`` of a pickled dict ``image name -> float32 one-hot`` of length
    ``num_classes - 1`` (entry ``c - 1`` for class id ``c``, no background),
    read back by the official code with ``np.load(path,
    allow_pickle=True).item()``.

    Args:
        path (str): Output ``.npy`` path; parent folders are created.
        labels (Mapping[str, Sequence[int]]): image id -> class ids.
        num_classes (int): Number of classes including background.
    """
    payload = {
        str(k): multi_hot(v, num_classes)
        for k, v in sorted(labels.items())
    }
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}.npy'
    np.save(tmp, payload, allow_pickle=True)
    os.replace(tmp, path)


def read_onehot_npy(path: str,
                    num_classes: Optional[int] = None) -> Dict[str, List[int]]:
    """Read an official ``cls_labels_onehot.npy`` (see
    :func:`write_onehot_npy`).

    Args:
        path (str): The ``.npy`` file.
        num_classes (int, optional): If given, every vector must have
            ``num_classes - 1`` entries.

    Returns:
        dict[str, list[int]]: image id -> sorted foreground class ids
        (``1 + index`` of every non-zero entry).

    Raises:
        ValueError: The file holds no ``name -> vector`` dict, or a vector of
            another length than the dataset's foreground classes.
    """
    try:
        payload = np.load(path, allow_pickle=True)
    except (OSError, ValueError) as e:
        raise ValueError(f'{path}: not a readable .npy file ({e})') from e
    if payload.shape != () or not isinstance(payload.item(), dict):
        raise ValueError(
            f'{path}: expected a pickled dict image name -> one-hot vector '
            f'(cls_labels_onehot.npy), got an array of shape {payload.shape}')
    out: Dict[str, List[int]] = {}
    for key, vec in payload.item().items():
        vec = np.asarray(vec).reshape(-1)
        if num_classes is not None and vec.size != num_classes - 1:
            raise ValueError(
                f'{path}: the label vector of {key!r} has {vec.size} entries '
                f'but the dataset has {num_classes - 1} foreground classes')
        out[str(key)] = [int(i) + 1 for i in np.flatnonzero(vec > 0)]
    return out


def read_voc_xml_labels(path: str, classes: Sequence[str]) -> List[int]:
    """Class ids of a PASCAL VOC annotation ``Annotations/<id>.xml``.

    The official VOC image-level labels: the distinct names of all
    ``<object>`` elements, difficult and truncated ones included.

    Args:
        path (str): The XML file.
        classes (Sequence[str]): Dataset classes, background first; a name's
            class id is its index.

    Returns:
        list[int]: Sorted foreground class ids.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: Unparsable XML, or an object name not in ``classes``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'VOC annotation not found: {path}')
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f'{path}: not a readable VOC XML annotation '
                         f'({e})') from e
    index = {name: i for i, name in enumerate(classes)}
    ids = set()
    for obj in root.iter('object'):
        name = (obj.findtext('name') or '').strip()
        if name not in index or index[name] == 0:
            raise ValueError(
                f'{path}: object name {name!r} is not a foreground class of '
                f'the dataset ({len(classes) - 1} classes: '
                f'{list(classes[1:4])}...)')
        ids.add(index[name])
    return sorted(ids)


def label_list_has_ids(path: str) -> bool:
    """Whether a split / label list file carries class ids after the names
    (the COCO label list format of :func:`read_coco_label_list`): some line
    has more than one token."""
    with open(path, encoding='utf-8') as f:
        return any(len(line.split()) > 1 for line in f)


def read_coco_label_list(path: str,
                         num_classes: int,
                         img_suffix: str = '.jpg') -> Dict[str, List[int]]:
    """Read the COCO label list (``coco14/train.txt`` of CLIP-ES).

    Each line is ``<image name>[<img_suffix>] <i> <i> ...`` with 0-based
    category indices ``0 .. num_classes - 2``; they become class ids ``i + 1``
    (the mask values of the VOC-style COCO masks).

    Args:
        path (str): The list file.
        num_classes (int): Number of classes including background.
        img_suffix (str): Suffix stripped from image names. Defaults to
            '.jpg'.

    Returns:
        dict[str, list[int]]: image name (no suffix) -> sorted class ids.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: A non-integer or out-of-range index (line named).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'COCO label list not found: {path}')
    out: Dict[str, List[int]] = {}
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            name = parts[0]
            if img_suffix and name.endswith(img_suffix):
                name = name[:-len(img_suffix)]
            try:
                ids = sorted({int(p) + 1 for p in parts[1:]})
            except ValueError as e:
                raise ValueError(f'{path}:{lineno}: class indices must be '
                                 f'integers, got {parts[1:]}') from e
            bad = [i - 1 for i in ids if i < 1 or i >= num_classes]
            if bad:
                raise ValueError(
                    f'{path}:{lineno}: {name} lists index(es) {bad} outside '
                    f'the 0-based range [0, {num_classes - 2}]')
            out[name] = ids
    return out


def read_named_labels(path: str,
                      classes: Sequence[str]) -> Dict[str, List[int]]:
    """Read the image-level labels of a custom dataset (docs/custom_dataset.md).

    Two formats, chosen by the suffix:

    * ``.csv``: a header ``image,labels`` and one row per image; ``labels``
      holds class names separated by ``;`` (names may contain spaces, e.g.
      ``potted plant``), empty for a background-only image::

          image,labels
          0001.jpg,cat;dog
          0002.jpg,potted plant

    * ``.json``: an object ``{"0001.jpg": ["cat", "dog"], ...}`` (names or
      class ids of ``classes``).

    Args:
        path: the labels file.
        classes: the dataset's classes, background first.

    Returns:
        image file name (as written) -> sorted foreground class ids.

    Raises:
        FileNotFoundError / ValueError naming the file, the row and the bad
        name.
    """
    import csv
    if not osp.isfile(path):
        raise FileNotFoundError(f'labels file not found: {path}')
    index = {name: i for i, name in enumerate(classes)}
    rows: List[tuple] = []
    if path.lower().endswith('.csv'):
        with open(path, newline='', encoding='utf-8') as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or not {'image', 'labels'} <= set(
                    reader.fieldnames):
                raise ValueError(
                    f'{path}: a labels CSV needs the header "image,labels", '
                    f'got {reader.fieldnames}')
            for line, row in enumerate(reader, start=2):
                names = [
                    n.strip() for n in (row['labels'] or '').split(';')
                    if n.strip()
                ]
                rows.append((f'line {line}', row['image'].strip(), names))
    elif path.lower().endswith('.json'):
        try:
            with open(path, encoding='utf-8') as f:
                payload = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: not valid JSON ({e})') from e
        if not isinstance(payload, dict):
            raise ValueError(f'{path}: expected an object image -> labels')
        for key, names in payload.items():
            if not isinstance(names, list):
                raise ValueError(f'{path}: labels of {key!r} must be a list')
            rows.append((repr(key), key, names))
    else:
        raise ValueError(f'{path}: labels file must be .csv or .json')
    out: Dict[str, List[int]] = {}
    for where, image, names in rows:
        if not image:
            raise ValueError(f'{path} {where}: empty image name')
        if image in out:
            raise ValueError(f'{path} {where}: image {image!r} listed twice')
        ids = set()
        for n in names:
            if isinstance(n, int) and not isinstance(n, bool):
                cid = n
            elif n in index:
                cid = index[n]
            else:
                raise ValueError(
                    f'{path} {where}: unknown class {n!r} (classes: '
                    f'{list(classes[1:])[:10]}'
                    f'{" …" if len(classes) > 11 else ""})')
            if not 0 < cid < len(classes):
                raise ValueError(f'{path} {where}: {n!r} is not a '
                                 'foreground class (background is implicit)')
            ids.add(cid)
        out[image] = sorted(ids)
    if not out:
        raise ValueError(f'{path}: lists no image')
    return out

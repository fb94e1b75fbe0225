# Copyright (c) mmseg-excel contributors. All rights reserved.
"""The two label conventions of VOC-style COCO masks, and their detection
(docs/methods/weakclip.md §7, "COCO label ids").

* ``'contiguous'``: 0 background, 1..80 the 80 categories in category-id
  order (81 classes; our exports, CLIP-ES' and ExCEL's COCO masks).
* ``'coco_id'``: 0 background, the value of a pixel is its COCO category id
  (1..90 with ten ids never used: 12, 26, 29, 30, 45, 66, 68, 69, 71, 83), as
  the 91-entry name list of the official WeakCLIP COCO config.

A name list of one convention with masks of the other silently pairs names
and ids wrongly from id 12 on. Some ids tell the conventions apart: a value in
12, 26, 29, 30, 45, 66, 68, 69, 71 is a category only in the contiguous
convention, a value in 81, 82, 84..90 only in the category-id one.
"""
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .transforms.image_labels import read_class_mask

#: COCO category ids that no annotation uses (ids 1..90)
COCO_UNUSED_IDS = {
    12: 'street sign', 26: 'hat', 29: 'shoe', 30: 'eye glasses', 45: 'plate',
    66: 'mirror', 68: 'window', 69: 'desk', 71: 'door', 83: 'blender'
}


#: ids that are a category only in one convention
CONTIGUOUS_ONLY_IDS = frozenset(i for i in COCO_UNUSED_IDS if i <= 80)
COCO_ID_ONLY_IDS = frozenset(range(81, 91)) - frozenset(COCO_UNUSED_IDS)
#: the convention a class list of this length implies
CONVENTION_OF_CLASS_COUNT = {81: 'contiguous', 91: 'coco_id'}


def mask_label_convention(values: Iterable[int],
                          ignore_index: int = 255) -> Optional[str]:
    """Convention shown by the ids of one mask: ``'contiguous'``,
    ``'coco_id'`` or None (its ids fit both).

    Raises:
        ValueError: ids of both conventions, or an id valid in neither
            (83, or above 90 other than ``ignore_index``).
    """
    ids = {int(v) for v in values} - {ignore_index}
    bad = sorted(i for i in ids
                 if i > 90 or i < 0 or i == 83)
    if bad:
        raise ValueError(f'id(s) {bad} are a class in neither COCO label '
                         'convention (contiguous 0..80, category ids 0..90)')
    contiguous = sorted(ids & CONTIGUOUS_ONLY_IDS)
    coco_id = sorted(ids & COCO_ID_ONLY_IDS)
    if contiguous and coco_id:
        raise ValueError(
            f'ids {contiguous} exist only in the contiguous convention, ids '
            f'{coco_id} only in the category-id one: mixed conventions')
    if contiguous:
        return 'contiguous'
    if coco_id:
        return 'coco_id'
    return None


def detect_mask_convention(
        paths: Sequence[str],
        ignore_index: int = 255,
        backend_args: Optional[dict] = None
) -> Tuple[Optional[str], Optional[str], List[int]]:
    """Read masks in order until one shows its convention.

    Returns:
        ``(convention, path of the mask that showed it, its ids)``, or
        ``(None, None, [])`` when every mask fits both conventions.

    Raises:
        ValueError: naming a mask with ids valid in neither convention, or
            ids of both conventions.
    """
    for path in paths:
        ids = np.unique(read_class_mask(path, backend_args)).tolist()
        try:
            found = mask_label_convention(ids, ignore_index)
        except ValueError as e:
            raise ValueError(f'{path}: {e}') from None
        if found is not None:
            return found, path, ids
    return None, None, []


def check_mask_convention(paths: Sequence[str],
                          num_classes: int,
                          what: str,
                          ignore_index: int = 255,
                          backend_args: Optional[dict] = None
                          ) -> Optional[str]:
    """Refuse COCO masks whose convention does not match a class list of
    ``num_classes`` names (81: contiguous, 91: category ids).

    ``what`` names the masks in the error (e.g. the folder). Returns the
    detected convention (None: undecided, nothing refused).
    """
    expected = CONVENTION_OF_CLASS_COUNT.get(num_classes)
    if expected is None:
        raise ValueError(
            f'{what}: a COCO class list has 81 (contiguous ids) or 91 '
            f'(category ids) entries, got {num_classes}')
    found, path, ids = detect_mask_convention(paths, ignore_index,
                                              backend_args)
    if found is not None and found != expected:
        shown = sorted(set(ids) & (COCO_ID_ONLY_IDS if found == 'coco_id'
                                   else CONTIGUOUS_ONLY_IDS))
        fix = ('COCOIdWSSSDataset (91-entry list, model class_names='
               'COCO_ID_CLASSES)' if found == 'coco_id' else
               'COCOWSSSDataset (81 classes, class_names=COCO_WSSS_CLASSES)')
        raise ValueError(
            f'{what}: the masks use the {found} COCO label convention '
            f'({path} holds id(s) {shown}), the class list has '
            f'{num_classes} entries ({expected} ids): names and ids would '
            f'be misaligned; use {fix} or convert the masks')
    return found


# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Class-name lists and prompt templates as data (docs/methods/excel.md
§2.1, docs/methods/clip_es.md §2.1).

Configs refer to these lists by name (``class_names='voc_excel'``,
``bg_names='voc'``) or give their own lists. The fused lists are the strings
the official ExCEL / CLIP-ES code inserts into the template ("sentence-level
synonym fusion", commas without spaces), checked against the parity fixtures
(``text.pt``: ``prompts``; ``clip_es/text.pt``: ``fg_names``, ``bg_names``,
``coco_fg_names``, ``coco_bg_names``).
"""
from typing import Dict, List, Sequence, Tuple, Union

#: The single prompt of ExCEL and CLIP-ES (sharpness criterion,
#docs/methods/clip_es.md §4.1).
ORIGAMI_TEMPLATE = 'a clean origami {}.'

#: The 20 PASCAL VOC foreground classes (dataset spelling, description keys).
VOC_CLASSES: Tuple[str, ...] = ('aeroplane', 'bicycle', 'bird', 'boat',
                                'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
                                'diningtable', 'dog', 'horse', 'motorbike',
                                'person', 'pottedplant', 'sheep', 'sofa',
                                'train', 'tvmonitor')

#: VOC names with the official synonym fusion (CLIP-ES ``new_class_names``,
#: the first 20 ExCEL prompts).
VOC_EXCEL_CLASSES: Tuple[str, ...] = ('aeroplane', 'bicycle', 'bird avian',
                                      'boat', 'bottle', 'bus', 'car', 'cat',
                                      'chair seat', 'cow', 'diningtable',
                                      'dog', 'horse', 'motorbike',
                                      'person with clothes,people,human',
                                      'pottedplant', 'sheep', 'sofa', 'train',
                                      'tvmonitor screen')

#: The 80 COCO foreground classes in class-id order with the VOC-style
#: spellings of the description files (motorbike, aeroplane, sofa,
#: pottedplant, diningtable, tvmonitor); same order as ``COCO_WSSS_CLASSES``.
COCO_CLASSES: Tuple[str, ...] = (
    'person', 'bicycle', 'car', 'motorbike', 'aeroplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'sofa', 'pottedplant', 'bed',
    'diningtable', 'toilet', 'tvmonitor', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush')

#: COCO names as the official code prompts them (``new_class_names_coco``).
#: NOTE: 'sknowboard' is a typo of the official code, kept on purpose: the
#: published numbers were obtained with this string.
COCO_EXCEL_CLASSES: Tuple[str, ...] = (
    'person with clothes,people,human', 'bicycle', 'car', 'motorbike',
    'aeroplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
    'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird avian', 'cat',
    'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe',
    'backpack,bag', 'umbrella,parasol', 'handbag,purse', 'necktie', 'suitcase',
    'frisbee', 'skis', 'sknowboard', 'sports ball', 'kite', 'baseball bat',
    'glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'dessertspoon', 'bowl', 'banana',
    'apple', 'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza',
    'donut', 'cake', 'chair seat', 'sofa', 'pottedplant', 'bed', 'diningtable',
    'toilet', 'tvmonitor screen', 'laptop', 'mouse', 'remote control',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hairdrier,blowdrier', 'toothbrush')

#: Class-related background set of VOC (CLIP-ES ``BACKGROUND_CATEGORY``, 25).
VOC_BACKGROUND: Tuple[str,
                      ...] = ('ground', 'land', 'grass', 'tree', 'building',
                              'wall', 'sky', 'lake', 'water', 'river', 'sea',
                              'railway', 'railroad', 'keyboard', 'helmet',
                              'cloud', 'house', 'mountain', 'ocean', 'road',
                              'rock', 'street', 'valley', 'bridge', 'sign')

#: COCO background set (23): the VOC set without 'keyboard' (a COCO class)
#: and 'sign'.
COCO_BACKGROUND: Tuple[str, ...] = tuple(
    n for n in VOC_BACKGROUND if n not in ('keyboard', 'sign'))

#: Foreground name lists by config name. ``*_excel`` and ``*_clip_es`` are the
#: same fused lists (ExCEL took them from CLIP-ES).
CLASS_NAME_SETS: Dict[str, Tuple[str, ...]] = {
    'voc': VOC_CLASSES,
    'voc_excel': VOC_EXCEL_CLASSES,
    'voc_clip_es': VOC_EXCEL_CLASSES,
    'coco': COCO_CLASSES,
    'coco_excel': COCO_EXCEL_CLASSES,
    'coco_clip_es': COCO_EXCEL_CLASSES,
}

#: Background name lists by config name.
BACKGROUND_SETS: Dict[str, Tuple[str, ...]] = {
    'voc': VOC_BACKGROUND,
    'coco': COCO_BACKGROUND,
    'none': (),
}

#: Generic sentences for a class without written descriptions: the
#: fallback descriptions of ``tools/build_attribute_bank.py --class-names``
#: (docs/custom_dataset.md). They describe views, sizes and parts, as the
#: LLM-written descriptions of ExCEL's attribute bank describe attributes.
DESCRIPTION_TEMPLATES: Tuple[str, ...] = (
    'a photo of a {}.',
    'a close-up photo of a {}.',
    'a photo of a small {}.',
    'a photo of a large {}.',
    'a cropped photo of a {}.',
    'a photo of the {} seen from the side.',
    'the shape of a {}.',
    'the texture of a {}.',
    'the colour of a {}.',
    'a part of a {}.',
)

#: Template lists by config name.
TEMPLATE_SETS: Dict[str, Tuple[str, ...]] = {
    'origami': (ORIGAMI_TEMPLATE, ),
    'descriptions': DESCRIPTION_TEMPLATES,
}

NameSpec = Union[str, Sequence[str], None]


def _resolve(spec: NameSpec, table: Dict[str, Tuple[str, ...]],
             what: str) -> List[str]:
    """Look a name list up in ``table`` or validate a given list."""
    if spec is None:
        return []
    if isinstance(spec, str):
        if spec not in table:
            raise KeyError(f'unknown {what} list {spec!r}; known: '
                           f'{sorted(table)} (or give a list of strings)')
        return list(table[spec])
    names = list(spec)
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise TypeError(f'{what} must be non-empty strings, got {bad!r}')
    return names


def resolve_class_names(spec: NameSpec) -> List[str]:
    """Foreground names from a set name (:data:`CLASS_NAME_SETS`) or a list."""
    names = _resolve(spec, CLASS_NAME_SETS, 'class-name')
    if not names:
        raise ValueError('class_names must give at least one class')
    return names


def resolve_bg_names(spec: NameSpec) -> List[str]:
    """Background names from a set name (:data:`BACKGROUND_SETS`), a list or
    ``None`` (no background prompts)."""
    return _resolve(spec, BACKGROUND_SETS, 'background-name')


def resolve_templates(spec: NameSpec) -> List[str]:
    """Templates from a set name (:data:`TEMPLATE_SETS`) or a list; each must
    hold exactly one ``{}``."""
    if spec is None:
        spec = 'origami'
    if isinstance(spec, str) and spec not in TEMPLATE_SETS and '{}' in spec:
        spec = [spec]
    templates = _resolve(spec, TEMPLATE_SETS, 'template')
    if not templates:
        raise ValueError('templates must hold at least one template')
    for t in templates:
        if t.count('{}') != 1:
            raise ValueError(
                f'template {t!r} must contain exactly one "{{}}" placeholder')
    return templates

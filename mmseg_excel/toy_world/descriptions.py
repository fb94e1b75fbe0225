# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Attribute descriptions of the toy classes (the ExCEL knowledge base,
docs/methods/excel.md §2.2).

Like the GPT-4 files of ExCEL, every string is ``"a clean origami <class>. "``
followed by one sentence about a visual attribute; here they are composed
from each class's appearance model, 20 per class.
"""
from typing import Dict, List

from .classes import TOY_CLASSES, ToyClass

NUM_DESCRIPTIONS = 20

_TEXTURE_SENTENCE = {
    'plain': 'it has a plain surface without any pattern.',
    'striped': 'it is covered with parallel stripes.',
    'dotted': 'it is covered with small round dots.',
    'checkered': 'it has a checkered pattern of small squares.',
}


def _class_sentences(spec: ToyClass) -> List[str]:
    """Twenty attribute sentences of one class."""
    colours = sorted(spec.colours, key=lambda c: -spec.colours[c])
    textures = sorted(spec.textures, key=lambda t: -spec.textures[t])
    c1, c2, cn = colours[0], colours[1 % len(colours)], colours[-1]
    t1, t2 = textures[0], textures[1 % len(textures)]
    mean_r = sum(spec.radius) / 2
    size = 'small' if mean_r < 0.205 else ('medium' if mean_r < 0.23 else
                                           'large')
    s = list(spec.facts)
    s += [
        f'it is usually {c1}.',
        f'it can be {c1} or {c2}.',
        f'it is often painted in a bright {c1} colour.',
        f'sometimes it is {cn}.',
        f'its main colour is {c1}.',
        _TEXTURE_SENTENCE[t1],
        f'its surface is often {t1}.',
        f'it can also be {t2}.',
        _TEXTURE_SENTENCE[t2],
        f'it is a {size} object in the picture.',
        'it appears as a compact shape in the scene.',
        f'it is a {spec.shape_word} object.',
        f'it has a {spec.shape_word} outline.',
        'it can be seen on grass, water or sand.',
        'it can be seen in front of a brick wall or the sky.',
    ]
    if len(s) != NUM_DESCRIPTIONS:
        raise AssertionError(f'{spec.name}: {len(s)} descriptions')
    return [f'a clean origami {spec.name}. {x}' for x in s]


def build_descriptions() -> Dict[str, List[str]]:
    """Class name -> 20 description strings, in class order."""
    return {c.name: _class_sentences(c) for c in TOY_CLASSES}

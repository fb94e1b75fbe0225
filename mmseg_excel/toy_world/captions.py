# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Captions of Toy World scenes.

Objects are mentioned by class name ("a red striped kite") or, sometimes,
only by an attribute phrase ("a striped diamond-shaped object"), and the
background stuff is named ("on grass", "under the sky") so that the
background prompts used by ExCEL are meaningful for the toy CLIP.
"""
from typing import List

import numpy as np

from .classes import BACKGROUND_PHRASES, TOY_CLASSES
from .scene import ToyObject, ToyScene

_SHAPE_WORD = {c.name: c.shape_word for c in TOY_CLASSES}
ATTRIBUTE_ONLY_PROB = 0.15
COLOUR_PROB = 0.6
TEXTURE_PROB = 0.6
SIZE_PROB = 0.3
NO_BACKGROUND_PROB = 0.15

TEMPLATES = (
    'a photo of {objs} on {bg}.',
    '{objs} on {bg}.',
    '{origami} on {bg}.',
    'a picture of {bg} with {objs}.',
    'there is {objs} in front of {bg}.',
    'a drawing of {objs} on {bg}.',
)
TEMPLATES_NO_BG = (
    'a photo of {objs}.',
    '{objs}.',
    '{origami}.',
    'a drawing of {objs}.',
)


def _article(word: str) -> str:
    """Indefinite article for ``word``."""
    return 'an' if word[0] in 'aeiou' else 'a'


def object_phrase(rng: np.random.Generator, obj: ToyObject) -> str:
    """Noun phrase for one object: name or attribute-only description."""
    words: List[str] = []
    if obj.size_word is not None and rng.random() < SIZE_PROB:
        words.append(obj.size_word)
    if rng.random() < COLOUR_PROB:
        words.append(obj.colour)
    if obj.texture != 'plain' and rng.random() < TEXTURE_PROB:
        words.append(obj.texture)
    if rng.random() < ATTRIBUTE_ONLY_PROB:
        words += [_SHAPE_WORD[obj.name], 'object']
    else:
        words.append(obj.name)
    return f'{_article(words[0])} {" ".join(words)}'


def background_phrase(rng: np.random.Generator, backgrounds: List[str]) -> str:
    """Phrase naming the background stuff (one or sky + ground)."""
    def pick(name: str) -> str:
        options = BACKGROUND_PHRASES[name]
        return options[rng.integers(len(options))]

    if len(backgrounds) == 1:
        return pick(backgrounds[0])
    sky, ground = backgrounds
    return f'{pick(ground)} under {pick(sky)}'


def make_caption(rng: np.random.Generator, scene: ToyScene,
                 name_only_prob: float = 0.0) -> str:
    """One random caption of ``scene``; objects listed in random order.

    With probability ``name_only_prob`` the caption names the objects' classes
    only, in one of three forms ("a clean origami star and a clean origami
    fish.", "a photo of a star and a fish.", "a star and a fish."): no
    colour, texture, size or background words, so the class names (the
    objects' shapes) are the only cue that matches it to its image. ``0``
    draws no extra random number (the captions are those of the default).
    """
    if name_only_prob > 0 and rng.random() < name_only_prob:
        names = [scene.objects[i].name
                 for i in rng.permutation(len(scene.objects))]
        form = rng.integers(3)
        if form == 0:
            return _join(['a clean origami ' + n for n in names]) + '.'
        listed = _join([f'{_article(n)} {n}' for n in names])
        return ('a photo of ' if form == 1 else '') + listed + '.'
    order = rng.permutation(len(scene.objects))
    phrases = [object_phrase(rng, scene.objects[i]) for i in order]
    # ExCEL's prompt form: "a clean origami <phrase without article>".
    origami = ['a clean origami ' + p.split(' ', 1)[1] for p in phrases]
    no_bg = rng.random() < NO_BACKGROUND_PROB
    templates = TEMPLATES_NO_BG if no_bg else TEMPLATES
    tpl = templates[rng.integers(len(templates))]
    bg = '' if no_bg else background_phrase(rng, scene.backgrounds)
    return tpl.format(
        objs=_join(phrases), origami=_join(origami), bg=bg)


def _join(phrases: List[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(phrases) == 1:
        return phrases[0]
    return ', '.join(phrases[:-1]) + ' and ' + phrases[-1]

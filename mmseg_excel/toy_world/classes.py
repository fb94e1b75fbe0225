# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Toy World vocabulary: foreground classes, background stuff, palette.

Every foreground class has its own shape family (see ``shapes.py``), a
colour distribution (named colours, jittered), a texture distribution, a size
range (radius as a fraction of the image side) and a rotation range. The
background "stuff" textures play the role of ExCEL's background categories.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

# Named base colours (RGB, 0-255); objects jitter around them.
COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (205, 35, 35),
    'orange': (240, 130, 20),
    'yellow': (240, 215, 40),
    'green': (60, 170, 50),
    'blue': (40, 80, 210),
    'purple': (130, 50, 170),
    'pink': (240, 120, 180),
    'white': (238, 238, 232),
    'black': (30, 30, 34),
}

TEXTURES: Tuple[str, ...] = ('plain', 'striped', 'dotted', 'checkered')


@dataclass(frozen=True)
class ToyClass:
    """Appearance model of one foreground class."""

    name: str
    shape_word: str  # attribute phrase naming the shape ("a <colour> round object")
    colours: Dict[str, float]  # colour name -> probability
    textures: Dict[str, float]  # texture name -> probability
    radius: Tuple[float, float]  # radius range, fraction of the image side
    max_rotation: float  # degrees, uniform in [-max, max]
    facts: List[str] = field(default_factory=list)  # description sentences


TOY_CLASSES: Tuple[ToyClass, ...] = (
    ToyClass('apple', 'round', {'red': .7, 'green': .2, 'yellow': .1},
             {'plain': .85, 'dotted': .15}, (.16, .26), 25., [
                 'it is a round fruit with a short stem on top.',
                 'it has a small leaf next to its stem.',
                 'it has a smooth and shiny skin.',
                 'it has a soft highlight on its upper left side.',
                 'its outline is a circle with a small bump at the top.',
             ]),
    ToyClass('star', 'five-pointed', {'yellow': .7, 'orange': .2,
                                      'white': .1},
             {'plain': .7, 'striped': .3}, (.17, .28), 180., [
                 'it has five sharp points around its centre.',
                 'its outline is a five-pointed star shape.',
                 'it has pointed tips and narrow inner corners.',
                 'it looks like a shining star in a drawing.',
                 'it has straight edges between its points.',
             ]),
    ToyClass('ring', 'hollow', {'blue': .5, 'purple': .3, 'orange': .2},
             {'plain': .5, 'striped': .5}, (.15, .24), 180., [
                 'it is a thick circular band with a hole in the middle.',
                 'the background can be seen through its centre.',
                 'it has a round inner edge and a round outer edge.',
                 'it looks like a donut or a hoop.',
                 'it is hollow, with an empty round centre.',
             ]),
    ToyClass('cross', 'plus-shaped', {'white': .4, 'red': .4, 'blue': .2},
             {'plain': .6, 'checkered': .4}, (.15, .23), 180., [
                 'it is made of two crossing bars of equal length.',
                 'it looks like a plus sign.',
                 'it has four arms meeting at right angles.',
                 'it has straight edges and square corners.',
                 'its arms are thick rectangular bars.',
             ]),
    ToyClass('heart', 'heart-shaped', {'pink': .6, 'red': .3, 'purple': .1},
             {'plain': .7, 'dotted': .3}, (.16, .26), 30., [
                 'it has two round lobes at the top and a point at the bottom.',
                 'it looks like a valentine heart symbol.',
                 'it has a small dip in the middle of its top edge.',
                 'its sides curve down to a single sharp tip.',
                 'it is a symmetric shape with curved edges.',
             ]),
    ToyClass('moon', 'crescent', {'white': .5, 'yellow': .5},
             {'plain': .8, 'dotted': .2}, (.17, .28), 60., [
                 'it is a thin curved crescent shape.',
                 'it looks like a circle with a bite taken out of its side.',
                 'it has two pointed horns at its ends.',
                 'it has one convex edge and one concave edge.',
                 'it may have small round craters on its surface.',
             ]),
    ToyClass('kite', 'diamond-shaped', {'orange': .4, 'red': .3,
                                        'purple': .3},
             {'striped': .6, 'checkered': .4}, (.19, .3), 40., [
                 'it is a tall diamond shape with four corners.',
                 'it is longer from top to bottom than from side to side.',
                 'it has straight edges meeting at sharp corners.',
                 'it is decorated with bold stripes or squares.',
                 'it looks like a flying toy made of paper.',
             ]),
    ToyClass('fish', 'finned', {'orange': .4, 'blue': .3, 'yellow': .3},
             {'dotted': .6, 'striped': .4}, (.18, .29), 25., [
                 'it has an oval body and a triangular tail fin.',
                 'it is longer than it is tall.',
                 'its tail is a forked fin at one end of its body.',
                 'its body is covered with spots or bands.',
                 'it looks like a small swimming animal.',
             ]),
)

CLASS_NAMES: Tuple[str, ...] = tuple(c.name for c in TOY_CLASSES)

# Background "stuff": name used in prompts -> caption phrases.
BACKGROUNDS: Tuple[str, ...] = ('grass', 'sky', 'water', 'brick', 'sand')
BACKGROUND_PHRASES: Dict[str, Tuple[str, ...]] = {
    'grass': ('grass', 'green grass', 'a lawn of grass'),
    'sky': ('the sky', 'a blue sky', 'the sky with clouds'),
    'water': ('water', 'blue water', 'the water'),
    'brick': ('a brick wall', 'bricks', 'a red brick wall'),
    'sand': ('sand', 'yellow sand', 'the sand'),
}
# Ground stuff that can appear below a sky horizon.
GROUND_BACKGROUNDS: Tuple[str, ...] = ('grass', 'water', 'sand')


def toy_palette(num_classes: int = len(TOY_CLASSES) + 1) -> np.ndarray:
    """VOC-style bit-interleaved colour map, ``(num_classes, 3)`` uint8."""
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for idx in range(num_classes):
        c, r, g, b = idx, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette[idx] = (r, g, b)
    return palette

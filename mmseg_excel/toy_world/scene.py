# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Render one Toy World scene: image, exact mask, labels and objects."""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from .classes import (BACKGROUNDS, COLOURS, GROUND_BACKGROUNDS, TOY_CLASSES)
from .shapes import SHAPES
from .textures import BACKGROUND_TEXTURES, pattern, smooth_noise

# Probabilities of 1, 2, 3 objects per image.
NUM_OBJECT_PROBS: Tuple[float, ...] = (0.4, 0.35, 0.25)
# A placed object keeps at least this fraction of its pixels visible.
MIN_VISIBLE_FRACTION = 0.5
# An object must cover at least this fraction of the image.
MIN_AREA_FRACTION = 0.004
HORIZON_PROB = 0.35  # probability of a sky-over-ground two-stuff scene


@dataclass
class ToyObject:
    """One visible object of a scene (attributes used by the captions)."""

    class_id: int  # 1..K (0 is background)
    name: str
    colour: str
    texture: str
    size_word: Optional[str]  # 'small', 'large' or None
    area: int  # visible pixels


@dataclass
class ToyScene:
    """A rendered scene; ``mask`` holds 0 = background, 1..K = classes."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray  # (H, W) uint8
    objects: List[ToyObject] = field(default_factory=list)
    backgrounds: List[str] = field(default_factory=list)

    @property
    def labels(self) -> List[int]:
        """Sorted foreground class ids present in the image (1..K)."""
        return sorted({o.class_id for o in self.objects})


def _background(rng: np.random.Generator,
                size: int) -> Tuple[np.ndarray, List[str]]:
    """Background stuff: one texture, or sky above a wavy ground horizon."""
    if rng.random() < HORIZON_PROB:
        ground = GROUND_BACKGROUNDS[rng.integers(len(GROUND_BACKGROUNDS))]
        top = BACKGROUND_TEXTURES['sky'](rng, size, size)
        bottom = BACKGROUND_TEXTURES[ground](rng, size, size)
        level = rng.uniform(0.3, 0.6) * size
        wave = (smooth_noise(rng, (1, size), (1, 4))[0] - 0.5) * 0.12 * size
        yy = np.arange(size, dtype=np.float32)[:, None]
        below = yy >= (level + wave)[None, :]
        img = np.where(below[..., None], bottom, top)
        return img, ['sky', ground]
    name = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    return BACKGROUND_TEXTURES[name](rng, size, size), [name]


def _pick(rng: np.random.Generator, probs: dict) -> str:
    """Sample a key of ``probs`` (dict name -> probability)."""
    keys = list(probs)
    p = np.asarray([probs[k] for k in keys], dtype=np.float64)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def render_scene(rng: np.random.Generator,
                 size: int,
                 max_tries: int = 12) -> ToyScene:
    """Draw a random scene of ``size`` × ``size`` pixels from ``rng``.

    1-3 objects of distinct classes are painted back to front; a new object
    is re-placed (up to ``max_tries`` times, else dropped) if it would hide
    more than half of an earlier object or is too small after cropping. The
    first object is always kept (placed fully inside if needed).
    """
    if size < 16:
        raise ValueError(f'toy world image size must be >= 16, got {size}')
    img, backgrounds = _background(rng, size)
    owner = np.full((size, size), -1, dtype=np.int16)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    n = 1 + rng.choice(len(NUM_OBJECT_PROBS), p=NUM_OBJECT_PROBS)
    cls_idx = rng.choice(len(TOY_CLASSES), size=n, replace=False)
    full_area: List[int] = []
    placed: List[ToyObject] = []
    min_area = MIN_AREA_FRACTION * size * size
    for k in cls_idx:
        spec = TOY_CLASSES[int(k)]
        lo, hi = spec.radius
        frac = rng.uniform(lo, hi)
        r = frac * size
        rel = (frac - lo) / (hi - lo)
        size_word = 'small' if rel < 0.3 else ('large' if rel > 0.7 else None)
        theta = np.deg2rad(rng.uniform(-spec.max_rotation, spec.max_rotation))
        flip = rng.random() < 0.5
        colour = _pick(rng, spec.colours)
        texture = _pick(rng, spec.textures)
        inside = None
        for attempt in range(max_tries):
            margin = 0.6 * r if attempt < max_tries - 1 or placed else r
            cx = rng.uniform(margin, size - margin)
            cy = rng.uniform(margin, size - margin)
            dx, dy = xx - cx, yy - cy
            c, s = np.cos(theta), np.sin(theta)
            u = (dx * c + dy * s) / r
            v = (-dx * s + dy * c) / r
            if flip and spec.max_rotation < 180:
                u = -u
            cand = SHAPES[spec.name](u, v)
            area = int(cand.sum())
            if area < min_area:
                continue
            ok = all(((owner == j) & ~cand).sum() >=
                     MIN_VISIBLE_FRACTION * full_area[j]
                     for j in range(len(placed)))
            if ok:
                inside = cand
                break
        if inside is None:
            continue
        # Paint: jittered base colour, light from the upper left, pattern.
        base = np.asarray(COLOURS[colour], np.float32)
        base = base * rng.uniform(0.85, 1.1) + rng.uniform(-15, 15, 3)
        others = [n_ for n_ in COLOURS if n_ != colour]
        second = np.asarray(COLOURS[others[rng.integers(len(others))]],
                            np.float32)
        pat = pattern(texture, u, v, rng.uniform(2.0, 3.2),
                      rng.uniform(0, np.pi))
        shade = 1.0 + 0.12 * np.clip(-(u + v) / 1.4, -1, 1)
        paint = np.where(pat[..., None], second, base) * shade[..., None]
        img = np.where(inside[..., None], paint, img)
        j = len(placed)
        owner[inside] = j
        full_area.append(int(inside.sum()))
        placed.append(
            ToyObject(int(k) + 1, spec.name, colour, texture, size_word, 0))
    for j, obj in enumerate(placed):
        obj.area = int((owner == j).sum())
    img = img + rng.normal(0, 3, img.shape).astype(np.float32)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    lut = np.asarray([0] + [o.class_id for o in placed], dtype=np.uint8)
    mask = lut[owner.astype(np.int64) + 1]
    return ToyScene(image, mask, placed, backgrounds)

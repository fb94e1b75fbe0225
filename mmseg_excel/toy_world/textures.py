# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Vectorised textures: background stuff and object surface patterns."""
from typing import Tuple

import cv2
import numpy as np


def smooth_noise(rng: np.random.Generator, shape: Tuple[int, int],
                 cells: Tuple[int, int]) -> np.ndarray:
    """Value noise in [0, 1]: a ``cells`` grid of uniforms, bicubic-upsampled."""
    h, w = shape
    low = rng.random((max(cells[0], 2), max(cells[1], 2))).astype(np.float32)
    up = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(up, 0.0, 1.0)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Blend colours ``a`` -> ``b`` (RGB) by the weight map ``t`` (H, W)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    return a + (b - a) * t[..., None]


def grass(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Green field with vertical blade streaks."""
    streak = smooth_noise(rng, (h, w), (max(h // 16, 2), max(w // 2, 2)))
    patch = smooth_noise(rng, (h, w), (4, 4))
    t = 0.6 * streak + 0.4 * patch
    img = _mix((40, 95, 25), (120, 190, 60), t)
    return img + rng.normal(0, 8, (h, w, 1)).astype(np.float32)


def sky(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Vertical blue gradient with soft white clouds."""
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None] * np.ones(
        (1, w), np.float32)
    img = _mix((70, 130, 220), (165, 205, 245), y)
    cloud = smooth_noise(rng, (h, w), (3, 5))
    cloud = np.clip((cloud - 0.55) * 3.0, 0, 1)
    img = img + (np.float32(250) - img) * cloud[..., None]
    return img + rng.normal(0, 3, (h, w, 1)).astype(np.float32)


def water(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Blue-teal water with horizontal wavy ripples."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    freq = rng.uniform(0.35, 0.6) * 64.0 / max(h, 1)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin(yy * freq * 2.0 +
                  2.0 * np.sin(xx * freq * 0.7 + phase)) * 0.5 + 0.5
    t = 0.6 * wave + 0.4 * smooth_noise(rng, (h, w), (3, 3))
    img = _mix((15, 70, 130), (60, 160, 190), t)
    return img + rng.normal(0, 4, (h, w, 1)).astype(np.float32)


def brick(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Running-bond red bricks with grey mortar."""
    bh = rng.uniform(0.08, 0.12) * h
    bw = bh * rng.uniform(2.0, 2.6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy = yy + rng.uniform(0, bh)
    row = np.floor(yy / bh)
    xs = xx + (row % 2) * bw / 2 + rng.uniform(0, bw)
    col = np.floor(xs / bw)
    fy = yy - row * bh
    fx = xs - col * bw
    mortar = (fy < 1.5) | (fx < 1.5)
    # Per-brick shade from a hash of (row, col).
    shade = np.mod(np.sin(row * 12.9898 + col * 78.233) * 43758.5453, 1.0)
    img = _mix((140, 45, 30), (190, 85, 55), shade.astype(np.float32))
    img[mortar] = (170, 165, 155)
    return img + rng.normal(0, 6, (h, w, 1)).astype(np.float32)


def sand(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Beige sand with fine grain and gentle dune ripples."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(-0.5, 0.5)
    ripple = np.sin((yy * np.cos(ang) + xx * np.sin(ang)) *
                    (0.5 * 64.0 / max(h, 1))) * 0.5 + 0.5
    t = 0.35 * ripple + 0.65 * smooth_noise(rng, (h, w), (5, 5))
    img = _mix((195, 165, 110), (235, 210, 160), t)
    return img + rng.normal(0, 9, (h, w, 1)).astype(np.float32)


BACKGROUND_TEXTURES = dict(
    grass=grass, sky=sky, water=water, brick=brick, sand=sand)


def pattern(name: str, u: np.ndarray, v: np.ndarray, freq: float,
            angle: float) -> np.ndarray:
    """Boolean pattern in object coordinates (True = secondary colour).

    ``plain`` is all False; ``striped`` bands across the direction
    ``angle``; ``dotted`` a lattice of discs; ``checkered`` a checkerboard.
    """
    if name == 'plain':
        return np.zeros(u.shape, dtype=bool)
    if name == 'striped':
        s = u * np.cos(angle) + v * np.sin(angle)
        return np.sin(s * freq * np.pi) > 0.2
    if name == 'dotted':
        fu = np.mod(u * freq, 1.0) - 0.5
        fv = np.mod(v * freq, 1.0) - 0.5
        return fu**2 + fv**2 <= 0.28**2
    if name == 'checkered':
        return (np.floor(u * freq) + np.floor(v * freq)) % 2 == 0
    raise ValueError(f'unknown texture {name!r}')

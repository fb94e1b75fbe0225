# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Shape families of the Toy World classes as vectorised inside-tests.

Each function takes local coordinates ``u`` (right) and ``v`` (down), in
units of the object radius (the shape fits roughly in ``[-1, 1]^2``), and
returns a boolean array: ``True`` where the point lies inside the shape.
"""
from typing import Callable, Dict

import numpy as np


def apple(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Disc with a stem and a leaf on top."""
    body = u**2 + ((v - 0.08) / 0.95)**2 <= 0.9**2
    stem = (np.abs(u + 0.03) <= 0.07) & (v >= -1.05) & (v <= -0.6)
    leaf = ((u - 0.28) / 0.26)**2 + ((v + 0.88) / 0.12)**2 <= 1.0
    return body | stem | leaf


def star(u: np.ndarray, v: np.ndarray, inner: float = 0.45) -> np.ndarray:
    """Regular five-pointed star (outer radius 1, inner radius ``inner``)."""
    rho = np.hypot(u, v)
    theta = np.arctan2(u, -v)  # 0 at the top point
    sector = 2 * np.pi / 5
    phi = np.abs(np.mod(theta + sector / 2, sector) - sector / 2)
    x, y = rho * np.cos(phi), rho * np.sin(phi)
    # Edge from the outer vertex (1, 0) to the inner one at angle sector/2.
    px, py = inner * np.cos(sector / 2), inner * np.sin(sector / 2)
    cross = (px - 1.0) * y - py * (x - 1.0)
    return cross >= 0


def ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Annulus with inner radius 0.55."""
    rho2 = u**2 + v**2
    return (rho2 <= 1.0) & (rho2 >= 0.55**2)


def cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Plus sign of two bars of half-width 0.3."""
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.3) & (av <= 1.0)) | ((av <= 0.3) & (au <= 1.0))


def heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Implicit heart curve ``(x²+y²-1)³ - x²y³ <= 0``."""
    x, y = u * 1.25, -v * 1.25 + 0.2
    return (x**2 + y**2 - 1)**3 - x**2 * y**3 <= 0


def moon(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Crescent: a disc minus a shifted disc."""
    outer = u**2 + v**2 <= 1.0
    bite = (u - 0.5)**2 + (v + 0.1)**2 <= 0.82**2
    return outer & ~bite


def kite(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Tall diamond with its widest point above the centre."""
    top = np.abs(u) / 0.7 + np.abs(v + 0.3) / 0.7 <= 1.0
    bottom = (v >= -0.3) & (np.abs(u) / 0.7 + (v + 0.3) / 1.3 <= 1.0)
    return (top & (v <= -0.3)) | bottom


def fish(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Oval body with a triangular tail on the right."""
    body = ((u + 0.2) / 0.8)**2 + (v / 0.5)**2 <= 1.0
    tail = (u >= 0.45) & (u <= 1.05) & (np.abs(v) <= (u - 0.45) * 1.0)
    return body | tail


SHAPES: Dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = dict(
    apple=apple,
    star=star,
    ring=ring,
    cross=cross,
    heart=heart,
    moon=moon,
    kite=kite,
    fish=fish)

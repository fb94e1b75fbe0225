# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Seeded random streams: one independent generator per (seed, stream, index).

A scene depends only on its own ``(seed, stream, index)``, so datasets are
reproducible byte for byte, splits never share scenes, and the CLIP
pretraining batches do not depend on where a resumed run restarts.
"""
import numpy as np

STREAMS = dict(train=0, val=1, test=2, pretrain=3, check=4)


def scene_rng(seed: int, stream: str, index: int) -> np.random.Generator:
    """Generator for scene ``index`` of ``stream`` under ``seed``."""
    if stream not in STREAMS:
        raise KeyError(f'unknown stream {stream!r}; known: {sorted(STREAMS)}')
    if seed < 0 or index < 0:
        raise ValueError(f'seed and index must be >= 0, got {seed}, {index}')
    ss = np.random.SeedSequence([int(seed), STREAMS[stream], int(index)])
    return np.random.Generator(np.random.PCG64(ss))

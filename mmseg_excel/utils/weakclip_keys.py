# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Key names of official WeakCLIP checkpoints → this package's
(docs/methods/weakclip.md §8)."""
import re
from typing import Dict

from torch import Tensor

_RULES = (
    (r'^backbone\.fpn3\.(weight|bias)$', r'adapter.levels.2.0.\1'),
    (r'^backbone\.fpn(\d)\.', lambda m: f'adapter.levels.{int(m[1]) - 1}.'),
    (r'^backbone\.transformer\.resblocks\.', 'backbone.resblocks.'),
)


def convert_weakclip_key(key: str) -> str:
    """One official key → ours (unchanged where the names agree)."""
    for pattern, repl in _RULES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def convert_weakclip_state_dict(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """An official WeakCLIP state dict with this package's key names."""
    out = {}
    for key, value in state.items():
        new = convert_weakclip_key(key)
        if new in out:
            raise ValueError(f'two official keys map to {new!r}')
        out[new] = value
    return out

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Patch-text similarity maps by "feature surgery" (ExCEL,
docs/methods/excel.md §3)."""
from typing import Tuple

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor


def patch_text_maps(image_features: Tensor,
                    text: Tensor,
                    num_fg: int,
                    temperature: float = 2.0) -> Tuple[Tensor, Tensor]:
    """Feature-surgery maps with class-token weighting and redundancy removal.

    Closed form of §3 (no ``(B, N, T, E)`` tensor)::

        p = softmax_T(temperature · F̂[:, 0] · Tᵀ);  w = p / mean_T(p)
        S[b, n, t] = w[b, t]·<F̂[b, n], T[t]> − mean_t' w[b, t']·<F̂[b, n], T[t']>
        M = min–max of S over all N tokens (class token included, official
        behaviour 10)

    Args:
        image_features: (B, N, E) calibrated tokens, class token first.
        text: (T, E) text embeddings, the ``num_fg`` foreground rows first
            (background prompts after them take part in ``p`` and the mean).
        num_fg: number of foreground classes kept in the CAM.
        temperature: multiplier of the class-token scores (2 in ExCEL).

    Returns:
        maps_all: (B, N, T) min–max normalised maps of every token/prompt.
        cams: (B, N - 1, num_fg) patch maps of the foreground classes.
    """
    if image_features.dim() != 3 or text.dim() != 2:
        raise ValueError('patch_text_maps expects image_features (B, N, E) '
                         f'and text (T, E), got {tuple(image_features.shape)}'
                         f' and {tuple(text.shape)}')
    if image_features.shape[-1] != text.shape[-1]:
        raise ValueError(
            f'embedding sizes differ: image {image_features.shape[-1]}'
            f' vs text {text.shape[-1]} (text must be (T, E))')
    if not 0 < num_fg <= text.shape[0]:
        raise ValueError(f'num_fg={num_fg} must be in 1..T={text.shape[0]}')
    sims = image_features @ text.t()  # (B, N, T)
    p = (temperature * sims[:, 0, :]).softmax(-1)
    w = p / p.mean(-1, keepdim=True)
    weighted = sims * w.unsqueeze(1)
    s = weighted - weighted.mean(-1, keepdim=True)
    s_min = s.amin(1, keepdim=True)
    s_max = s.amax(1, keepdim=True)
    maps_all = (s - s_min) / (s_max - s_min)
    return maps_all, maps_all[:, 1:, :num_fg]


@MODELS.register_module()
class SurgeryPatchTextMap(nn.Module):
    """Registered wrapper of :func:`patch_text_maps` (docs/methods/excel.md
    §3).

    Args:
        num_fg: number of foreground classes (the first rows of the text).
        temperature: class-token score multiplier (2.0).
        text_layout: ``'TE'`` for (T, E) text or ``'ET'`` for the official
            transposed (E, T) ``text_attr``.
    """

    def __init__(self,
                 num_fg: int,
                 temperature: float = 2.0,
                 text_layout: str = 'TE') -> None:
        super().__init__()
        if text_layout not in ('TE', 'ET'):
            raise ValueError(
                f"text_layout must be 'TE' or 'ET', got {text_layout!r}")
        self.num_fg = num_fg
        self.temperature = temperature
        self.text_layout = text_layout

    def forward(self, image_features: Tensor,
                text: Tensor) -> Tuple[Tensor, Tensor]:
        """Return ``(maps_all (B, N, T), cams (B, P, num_fg))``."""
        if self.text_layout == 'ET':
            text = text.t()
        return patch_text_maps(image_features, text, self.num_fg,
                               self.temperature)

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Learnable Visual Calibration shift (docs/methods/excel.md §4).

The trainable fused features ``f`` (B, C, h, w) of the decoder become an
attention shift ``R`` (B, P, P) added to the calibrated attention of every
surgery block: ``S_h[1:, 1:] += R`` per head, then summed over heads, i.e.
``S[1:, 1:] += num_heads * R`` (class row/column not shifted).
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def lvc_shift(ex_feats: Tensor,
              beta: float = 1.0,
              gamma: float = 3.0,
              per_image_mean: bool = False) -> Tensor:
    """LVC attention shift ``R`` (§4).

    Args:
        ex_feats: (B, C, h, w) fused decoder features (detached).
        beta: multiplier of the mean subtracted from the cosine matrix.
        gamma: scale after centring.
        per_image_mean: ``False`` (official, official behaviour 14): ONE mean
        over the whole
            (B, P, P) batch tensor; ``True``: one mean per image.

    Returns:
        R: (B, P, P), rows softmax-normalised over the keys with negative
        centred similarities masked to ``-inf``.
    """
    if ex_feats.dim() != 4:
        raise ValueError('lvc_shift expects ex_feats (B, C, h, w), got '
                         f'{tuple(ex_feats.shape)}')
    u = F.normalize(ex_feats.flatten(2).float(), dim=1)  # (B, C, P)
    g = u.transpose(1, 2) @ u  # (B, P, P) cosines
    mean = (g.mean(dim=(1, 2), keepdim=True) if per_image_mean else g.mean())
    g = (g - beta * mean) * gamma
    g = g.masked_fill(g < 0, float('-inf'))
    return g.softmax(dim=-1)


def add_lvc_shift(attn: Tensor, shift: Tensor, num_heads: int) -> Tensor:
    """``S[:, 1:, 1:] += num_heads * R`` on a head-summed (B, N, N) matrix
    (per-head addition of ``R`` then sum over heads)."""
    if attn.shape[-1] != shift.shape[-1] + 1:
        raise ValueError(
            f'LVC shift of {shift.shape[-1]} patches does not match the '
            f'attention over {attn.shape[-1]} tokens (patches + class token)')
    out = attn.clone()
    out[:, 1:, 1:] += num_heads * shift
    return out

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Pixel-adaptive refinement, PAR (AFA/ToCo, used by ExCEL; EXCEL.md §5.4)."""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def _neighbour_offsets(dilations: Sequence[int]) -> List[Tuple[int, int]]:
    """(dy, dx) of the 8 neighbours per dilation, in the official order."""
    base = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0),
            (1, 1)]
    return [(d * dy, d * dx) for d in dilations for dy, dx in base]


@MODELS.register_module()
class PixelAdaptiveRefinement(nn.Module):
    """Pixel-adaptive refinement of class maps by local colour affinity.

    ``W = softmax_48(−mean_c(|I_c(q) − I_c(p)| / (std_48 I_c + 1e-8) / w1)²)
    + w2 · softmax_48(−(pos / std_48(pos) / w1)²)`` over the 8 neighbours of
    every dilation (replicate padding), then ``num_iter`` times
    ``X(p) ← Σ_q W(p, q) X(q)`` for all channels.

    The neighbour affinities are computed once; each iteration pads the
    maps once with the largest dilation and sums shifted slices, so no
    (B, C, 48, H, W) tensor is built. Batched over B, any number of channels.

    Args:
        dilations: neighbour dilations, e.g. (1, 2, 4, 8, 12, 24).
        num_iter: number of propagation iterations (20).
        w1: colour-affinity temperature (0.3).
        w2: weight of the positional term (0.01).
    """

    def __init__(self,
                 dilations: Sequence[int] = (1, 2, 4, 8, 12, 24),
                 num_iter: int = 20,
                 w1: float = 0.3,
                 w2: float = 0.01) -> None:
        super().__init__()
        if len(dilations) == 0 or min(dilations) < 1:
            raise ValueError(
                f'PAR dilations must be positive, got {dilations}')
        self.dilations = [int(d) for d in dilations]
        self.num_iter = int(num_iter)
        self.w1 = float(w1)
        self.w2 = float(w2)
        self.offsets = _neighbour_offsets(self.dilations)
        # float32 sqrt(2) times the dilation, as the official kernel builds it
        pos = torch.cat([
            torch.tensor([
                math.sqrt(2), 1,
                math.sqrt(2), 1, 1,
                math.sqrt(2), 1,
                math.sqrt(2)
            ],
                         dtype=torch.float32) * d for d in self.dilations
        ])
        pos_aff = -(pos / (pos.std() + 1e-8) / self.w1)**2
        self.register_buffer(
            'pos_weight', pos_aff.softmax(0), persistent=False)

    def _padded(self, x: Tensor) -> Tensor:
        """Replicate-pad by the largest dilation (clamped indices)."""
        m = max(self.dilations)
        h, w = x.shape[-2:]
        rows = torch.arange(-m, h + m, device=x.device).clamp_(0, h - 1)
        cols = torch.arange(-m, w + m, device=x.device).clamp_(0, w - 1)
        return x.index_select(-2, rows).index_select(-1, cols)

    def _shift(self, xp: Tensor, dy: int, dx: int, h: int, w: int) -> Tensor:
        m = max(self.dilations)
        return xp[..., m + dy:m + dy + h, m + dx:m + dx + w]

    def affinity(self, images: Tensor) -> Tensor:
        """Neighbour weights ``W`` (B, 48, H, W); each pixel sums to 1 + w2."""
        b, c, h, w = images.shape
        n = len(self.offsets)
        xp = self._padded(images)
        mean = torch.zeros_like(images)
        for dy, dx in self.offsets:
            mean += self._shift(xp, dy, dx, h, w)
        mean /= n
        var = torch.zeros_like(images)
        for dy, dx in self.offsets:
            var += (self._shift(xp, dy, dx, h, w) - mean)**2
        # a_k / w1 = |I(q) − I(p)| / (std + 1e-8) / w1; mean over channels of −a²
        inv = 1.0 / ((var / (n - 1)).sqrt_() + 1e-8) / self.w1
        aff = images.new_empty(b, n, h, w)
        for k, (dy, dx) in enumerate(self.offsets):
            a = (self._shift(xp, dy, dx, h, w) - images).mul_(inv).square_()
            torch.sum(a, 1, out=aff[:, k])
        aff.mul_(-1.0 / c)
        aff = aff.softmax(1)
        aff += self.w2 * self.pos_weight.to(aff).view(1, n, 1, 1)
        return aff

    def forward(self, images: Tensor, masks: Tensor) -> Tensor:
        """Refine ``masks`` (B, C, H, W) with ``images`` (B, 3, H', W').

        The image is resized to the mask size (bilinear, align_corners=True)
        when the sizes differ. Any per-channel affine normalisation of the
        image gives the same result.
        """
        if images.dim() != 4 or masks.dim(
        ) != 4 or images.shape[0] != masks.shape[0]:
            raise ValueError('PAR expects images (B, 3, H, W) and masks '
                             f'(B, C, H, W), got {tuple(images.shape)} and '
                             f'{tuple(masks.shape)}')
        h, w = masks.shape[-2:]
        images = images.to(masks.dtype)
        if images.shape[-2:] != masks.shape[-2:]:
            images = F.interpolate(
                images, size=(h, w), mode='bilinear', align_corners=True)
        aff = self.affinity(images)
        x = masks
        for _ in range(self.num_iter):
            xp = self._padded(x)
            out = torch.zeros_like(x)
            for k, (dy, dx) in enumerate(self.offsets):
                out.addcmul_(self._shift(xp, dy, dx, h, w), aff[:, k:k + 1])
            x = out
        return x


#: short name used in the papers' code
PAR = PixelAdaptiveRefinement

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Pixel-adaptive refinement, PAR (AFA/ToCo, used by ExCEL;
docs/methods/excel.md §5.4)."""
import math
import warnings
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

#: propagation back ends; ``auto`` picks ``sparse`` on CPU, ``shift`` else
PROPAGATIONS = ('auto', 'sparse', 'shift')


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

    The neighbour weights are computed once from shifted views of one
    padded image (no (B, C, 48, H, W) tensor). The propagation either
    multiplies by ``W`` as one block-diagonal sparse CSR matrix of the whole
    batch (``sparse``: one kernel per iteration, the fastest on CPU) or sums
    48 shifted slices of the padded maps (``shift``: plain dense ops, for
    devices without sparse CSR products). Batched over B, any number of
    channels.

    Args:
        dilations: neighbour dilations, e.g. (1, 2, 4, 8, 12, 24).
        num_iter: number of propagation iterations (20).
        w1: colour-affinity temperature (0.3).
        w2: weight of the positional term (0.01).
        propagation: ``'auto'`` (``sparse`` on CPU, ``shift`` elsewhere),
            ``'sparse'`` or ``'shift'``; all give the same result up to
            float rounding.
    """

    def __init__(self,
                 dilations: Sequence[int] = (1, 2, 4, 8, 12, 24),
                 num_iter: int = 20,
                 w1: float = 0.3,
                 w2: float = 0.01,
                 propagation: str = 'auto') -> None:
        super().__init__()
        if len(dilations) == 0 or min(dilations) < 1:
            raise ValueError(
                f'PAR dilations must be positive, got {dilations}')
        if propagation not in PROPAGATIONS:
            raise ValueError(f'PAR propagation must be one of {PROPAGATIONS}, '
                             f'got {propagation!r}')
        self.dilations = [int(d) for d in dilations]
        self.num_iter = int(num_iter)
        self.w1 = float(w1)
        self.w2 = float(w2)
        self.propagation = propagation
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
        self._csr_cache = None

    def _padded(self, x: Tensor) -> Tensor:
        """Replicate-pad by the largest dilation (clamped indices)."""
        m = max(self.dilations)
        h, w = x.shape[-2:]
        rows = torch.arange(-m, h + m, device=x.device).clamp_(0, h - 1)
        cols = torch.arange(-m, w + m, device=x.device).clamp_(0, w - 1)
        return x.index_select(-2, rows).index_select(-1, cols)

    def _shifted(self, x: Tensor) -> List[Tensor]:
        """Views ``x(p + offset_k)`` (replicate padding) of every neighbour."""
        m = max(self.dilations)
        h, w = x.shape[-2:]
        xp = self._padded(x)
        return [
            xp[..., m + dy:m + dy + h, m + dx:m + dx + w]
            for dy, dx in self.offsets
        ]

    def affinity(self, images: Tensor) -> Tensor:
        """Neighbour weights ``W`` (B, H, W, K), neighbours last (K = 8 per
        dilation, official order); each pixel's weights sum to 1 + w2."""
        b, c, h, w = images.shape
        n = len(self.offsets)
        shifted = self._shifted(images)
        mean = torch.zeros_like(images)
        for s in shifted:
            mean += s
        mean /= n
        var = torch.zeros_like(images)
        tmp = torch.empty_like(images)
        for s in shifted:
            torch.sub(s, mean, out=tmp)
            var.addcmul_(tmp, tmp)
        # 1 / (std_48 + 1e-8) / w1 (unbiased std, as torch.std)
        inv = var.div_(n - 1).sqrt_().add_(1e-8).reciprocal_().div_(self.w1)
        aff = images.new_empty(b, n, h, w)
        for k, s in enumerate(shifted):
            torch.sub(s, images, out=tmp).mul_(inv).square_()
            torch.sum(tmp, 1, out=aff[:, k])
        # −mean over channels, softmax over the neighbours; the softmax runs
        # over dim 1 like the official one (a last-dim softmax rounds its exp
        # differently: 2.5x the parity error), then neighbours go last
        aff = aff.mul_(-1.0 / c).softmax(1).permute(0, 2, 3, 1).contiguous()
        aff += self.w2 * self.pos_weight.to(aff)
        return aff

    def _csr_index(self, b: int, h: int, w: int,
                   device: torch.device) -> Tuple[Tensor, Tensor]:
        """Row pointers and column indices of the block-diagonal (B·H·W)²
        neighbour matrix: row ``p`` holds its K neighbours ``q`` (clamped
        coordinates = replicate padding) in the order of :meth:`affinity`.
        The last result is cached, as the batch shape rarely changes
        (B·H·W·K int32 column indices: 79 MB for 4 images of 320²)."""
        key = (b, h, w, str(device))
        if self._csr_cache is not None and self._csr_cache[0] == key:
            return self._csr_cache[1]
        k = len(self.offsets)
        n = b * h * w
        itype = torch.int32 if n * k < 2**31 else torch.int64
        dy = torch.tensor([o[0] for o in self.offsets], device=device)
        dx = torch.tensor([o[1] for o in self.offsets], device=device)
        ys = torch.arange(h, device=device).view(1, h, 1, 1)
        xs = torch.arange(w, device=device).view(1, 1, w, 1)
        start = (torch.arange(b, device=device) * (h * w)).view(b, 1, 1, 1)
        col = ((ys + dy).clamp_(0, h - 1) * w + (xs + dx).clamp_(0, w - 1) +
               start).to(itype).view(-1)
        crow = torch.arange(0, n * k + 1, k, device=device, dtype=itype)
        self._csr_cache = (key, (crow, col))
        return crow, col

    def _propagate_sparse(self, aff: Tensor, masks: Tensor) -> Tensor:
        """``num_iter`` products with ``W`` as one (B·H·W)² CSR matrix."""
        b, c, h, w = masks.shape
        n = b * h * w
        crow, col = self._csr_index(b, h, w, masks.device)
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter('ignore', UserWarning)
            mat = torch.sparse_csr_tensor(
                crow, col, aff.reshape(-1), size=(n, n),
                check_invariants=False)
        x = masks.permute(0, 2, 3, 1).reshape(n, c)
        for _ in range(self.num_iter):
            x = mat @ x
        return x.view(b, h, w, c).permute(0, 3, 1, 2).contiguous()

    def _propagate_shift(self, aff: Tensor, masks: Tensor) -> Tensor:
        """``num_iter`` sums of the 48 shifted, weighted maps (dense ops)."""
        aff = aff.permute(0, 3, 1, 2).contiguous()
        x = masks
        for _ in range(self.num_iter):
            out = torch.zeros_like(x)
            for k, s in enumerate(self._shifted(x)):
                out.addcmul_(s, aff[:, k:k + 1])
            x = out
        return x

    def forward(self, images: Tensor, masks: Tensor) -> Tensor:
        """Refine ``masks`` (B, C, H, W) with ``images`` (B, 3, H', W').

        The image is resized to the mask size (bilinear, align_corners=True)
        when the sizes differ. Any per-channel affine normalisation of the
        image gives the same result. Runs outside autocast in at least float32
        (float64 stays float64) and returns the dtype of ``masks``.
        """
        if images.dim() != 4 or masks.dim(
        ) != 4 or images.shape[0] != masks.shape[0]:
            raise ValueError('PAR expects images (B, 3, H, W) and masks '
                             f'(B, C, H, W), got {tuple(images.shape)} and '
                             f'{tuple(masks.shape)}')
        h, w = masks.shape[-2:]
        sparse = self.propagation == 'sparse' or (
            self.propagation == 'auto' and masks.device.type == 'cpu')
        dtype = torch.promote_types(masks.dtype, torch.float32)
        with torch.autocast(masks.device.type, enabled=False):
            x = masks.to(dtype)
            images = images.to(dtype)
            if images.shape[-2:] != (h, w):
                images = F.interpolate(
                    images, size=(h, w), mode='bilinear', align_corners=True)
            aff = self.affinity(images)
            if sparse:
                x = self._propagate_sparse(aff, x)
            else:
                x = self._propagate_shift(aff, x)
        return x.to(masks.dtype)


#: short name used in the papers' code
PAR = PixelAdaptiveRefinement

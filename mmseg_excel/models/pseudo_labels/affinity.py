# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Attention affinity with class-aware box masks (CAA).

One module serves ExCEL (docs/methods/excel.md §5.1-5.2: last 6 layers,
optional
decoder-affinity layer selection, τ = 0.79) and CLIP-ES
(docs/methods/clip_es.md §5: last 8
head-averaged maps, box threshold 0.4); only the configuration differs.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def sinkhorn_normalise(attn: Tensor, iters: int = 3) -> Tensor:
    """``D = A / colsum; D = D / rowsum`` repeated ``iters`` times (..., P, P)."""
    d = attn
    for _ in range(iters):
        d = d / d.sum(-2, keepdim=True)
        d = d / d.sum(-1, keepdim=True)
    return d


def sinkhorn_affinity(attn: Tensor, iters: int = 3, power: int = 2) -> Tensor:
    """Sinkhorn normalise (column first), symmetrise, raise to ``power``.

    ``T = ((D + Dᵀ) / 2)^power`` (matrix power) with
    ``D = sinkhorn_normalise(A, iters)`` (CLIP-ES Eq. 6, docs/methods/excel.md
    §5.1).
    Works on (..., P, P).
    """
    d = sinkhorn_normalise(attn, iters)
    d = (d + d.transpose(-1, -2)) / 2
    out = d
    for _ in range(power - 1):
        out = out @ d
    return out


def connected_components(binary: Tensor,
                         max_iter: Optional[int] = None) -> Tensor:
    """8-connected component labels of binary maps (..., h, w), on device.

    Every foreground pixel gets the largest flat index + 1 of its
    component (iterative max-label propagation with a 3×3 max-pool until
    nothing changes, at most h·w rounds); background is 0.
    """
    shape = binary.shape
    h, w = shape[-2:]
    fg = binary.reshape(-1, 1, h, w).float()
    idx = torch.arange(
        1, h * w + 1, device=binary.device,
        dtype=torch.float32).view(1, 1, h, w)
    lab = fg * idx
    max_iter = h * w if max_iter is None else max_iter
    for i in range(max_iter):
        new = F.max_pool2d(lab, 3, stride=1, padding=1) * fg
        # check convergence every few rounds to limit host syncs
        if (i % 4 == 3 or i == max_iter - 1) and torch.equal(new, lab):
            lab = new
            break
        lab = new
    return lab.reshape(shape).long()


def box_masks_from_maps(cams: Tensor, threshold: float) -> Tensor:
    """Union of the clamped bounding boxes of thresholded maps (§5.2).

    ``g = uint8(255·m)`` (truncation), ``thr = int(τ·max g)``, ``g > thr``.
    OpenCV's ``findContours(RETR_TREE)`` + ``boundingRect`` gives one box per
    outer border (= per 8-connected component) and one per hole; a hole's
    border lies inside its component, so the union of boxes is the union of
    the component boxes. Each box is ``[y0:min(y1+1, h−1), x0:min(x1+1, w−1)]``
    with end-exclusive slices, so the last row/column is never covered.

    Args:
        cams: (..., h, w) maps in [0, 1].
        threshold: τ relative to the map's uint8 maximum.

    Returns:
        (..., h, w) float masks (1 inside any box).
    """
    shape = cams.shape
    h, w = shape[-2:]
    flat = cams.reshape(-1, h * w)
    g = (flat * 255).to(torch.uint8).to(torch.int64)
    thr = torch.floor(threshold * g.amax(-1, keepdim=True).double()).long()
    binary = (g > thr).view(-1, h, w)
    labels = connected_components(binary).view(-1, h * w)  # 0 = background
    m = labels.shape[0]
    ys = torch.arange(h, device=cams.device).repeat_interleave(w).expand(m, -1)
    xs = torch.arange(w, device=cams.device).repeat(h).expand(m, -1)
    big = h * w + 1
    init_min = torch.full((m, h * w + 1),
                          big,
                          dtype=torch.long,
                          device=cams.device)
    init_max = torch.full((m, h * w + 1),
                          -1,
                          dtype=torch.long,
                          device=cams.device)
    y0 = init_min.scatter_reduce(1, labels, ys, 'amin')
    x0 = init_min.scatter_reduce(1, labels, xs, 'amin')
    y1 = (init_max.scatter_reduce(1, labels, ys, 'amax') + 1).clamp(max=h - 1)
    x1 = (init_max.scatter_reduce(1, labels, xs, 'amax') + 1).clamp(max=w - 1)
    # label 0 is background: drop it; empty labels give empty ranges
    y0, x0, y1, x1 = y0[:, 1:], x0[:, 1:], y1[:, 1:], x1[:, 1:]
    ar_h = torch.arange(h, device=cams.device).view(1, 1, h)
    ar_w = torch.arange(w, device=cams.device).view(1, 1, w)
    rows = ((ar_h >= y0.unsqueeze(-1)) & (ar_h < y1.unsqueeze(-1))).float()
    cols = ((ar_w >= x0.unsqueeze(-1)) & (ar_w < x1.unsqueeze(-1))).float()
    mask = (rows.transpose(1, 2) @ cols) > 0  # (m, h, w)
    return mask.to(cams.dtype).view(shape)


def minmax_upsample(maps: Tensor,
                    size: Tuple[int, int],
                    eps: float = 1e-7) -> Tensor:
    """``(x − min) / (eps + max(x − min))`` per map, then bilinear resize.

    Half-pixel bilinear (align_corners=False, = OpenCV INTER_LINEAR) of
    (B, K, h, w) maps to ``size``.
    """
    flat = maps.flatten(2)
    flat = flat - flat.amin(-1, keepdim=True)
    flat = flat / (eps + flat.amax(-1, keepdim=True))
    return F.interpolate(
        flat.view_as(maps),
        size=tuple(size),
        mode='bilinear',
        align_corners=False)


@MODELS.register_module()
class AttentionAffinity(nn.Module):
    """Class-aware attention affinity refinement of patch CAMs.

    ``Ā`` = mean of the last ``num_layers`` attention maps (class token
    dropped), or with ``seg_attn`` the ExCEL layer selection of §5.1
    (keep layers whose ``Σ(Â − A_l)`` is ≤ the layer mean, average, ``⊙ Â``);
    ``T = sinkhorn_affinity(Ā)``; per class ``refined_c = (T ⊙ B_c[cols]) ·
    vec(cam_c)`` with ``B_c`` the box mask of §5.2.

    Configurations: ExCEL ``dict(num_layers=6, box_threshold=0.79)`` (0.88
    COCO, 0.75 training-time validation) with ``seg_attn`` after the LVC
    switch; CLIP-ES ``dict(num_layers=8, box_threshold=0.4)`` (0.7 COCO) on
    the head-averaged maps, followed by :func:`minmax_upsample` to the
    original size.

    Args:
        num_layers: how many of the last attention maps to average
            (6 for ExCEL, 8 for CLIP-ES).
        box_threshold: τ of the box masks (0.79 ExCEL VOC, 0.4 CLIP-ES VOC).
        sinkhorn_iters: column/row alternations (3).
        power: matrix power of the symmetrised affinity (2).
        drop_class_token: attention maps are (N, N) with a leading class
            token to drop; False when they are already (P, P).
        seg_attn_eps: the 1e-5 of the kept-layer average.
    """

    def __init__(self,
                 num_layers: int = 6,
                 box_threshold: float = 0.79,
                 sinkhorn_iters: int = 3,
                 power: int = 2,
                 drop_class_token: bool = True,
                 seg_attn_eps: float = 1e-5) -> None:
        super().__init__()
        if num_layers < 1 or power < 1 or sinkhorn_iters < 0:
            raise ValueError('AttentionAffinity needs num_layers >= 1, power '
                             f'>= 1, sinkhorn_iters >= 0; got {num_layers}, '
                             f'{power}, {sinkhorn_iters}')
        self.num_layers = num_layers
        self.box_threshold = box_threshold
        self.sinkhorn_iters = sinkhorn_iters
        self.power = power
        self.drop_class_token = drop_class_token
        self.seg_attn_eps = seg_attn_eps

    def mean_attention(self,
                       attn_weights: Tensor,
                       seg_attn: Optional[Tensor] = None) -> Tensor:
        """Ā (B, P, P) from ``attn_weights`` (L, B, N, N)."""
        if attn_weights.dim() != 4 or attn_weights.shape[0] < self.num_layers:
            raise ValueError(
                'attn_weights must be (L, B, N, N) with L >= '
                f'{self.num_layers}, got {tuple(attn_weights.shape)}')
        a = attn_weights[-self.num_layers:]
        if self.drop_class_token:
            a = a[..., 1:, 1:]
        if seg_attn is None:
            return a.mean(0)
        if seg_attn.shape != a.shape[1:]:
            raise ValueError(
                f'seg_attn must be (B, P, P) = {tuple(a.shape[1:])},'
                f' got {tuple(seg_attn.shape)}')
        diff = (seg_attn.unsqueeze(0) - a).sum((-2, -1))  # (L, B)
        keep = (diff <= diff.mean(0, keepdim=True)).to(a.dtype)
        mean = (keep[..., None, None] * a).sum(0) / (
            keep.sum(0)[..., None, None] + self.seg_attn_eps)
        return mean * seg_attn

    def forward(
            self,
            attn_weights: Tensor,
            cams: Tensor,
            grid_hw: Tuple[int, int],
            seg_attn: Optional[Tensor] = None,
            box_threshold: Optional[float] = None
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Refine ``cams`` (B, P, K) with the attention of the same images.

        Args:
            attn_weights: (L, B, N, N) per-layer attention (or (L, B, P, P)
                with ``drop_class_token=False``).
            cams: (B, P, K) patch maps in [0, 1] (K may be padded classes).
            grid_hw: (h, w) with h·w = P (row-major flattening).
            seg_attn: optional (B, P, P) predicted affinity (ExCEL §5.1).
            box_threshold: τ for this call (e.g. 0.75 of ExCEL's
                validation pseudo labels); None: the configured one.

        Returns:
            refined (B, K, h, w) (not normalised), box masks (B, K, h, w),
            affinity T (B, P, P).
        """
        b, p, k = cams.shape
        h, w = grid_hw
        # fp32 as the official code (box thresholds on uint8(255·m) are
        # sensitive to the dtype of m)
        cams = cams.float()
        attn_weights = attn_weights.float()
        seg_attn = seg_attn.float() if seg_attn is not None else None
        if h * w != p:
            raise ValueError(f'grid {grid_hw} does not match P={p} patches')
        affinity = sinkhorn_affinity(
            self.mean_attention(attn_weights, seg_attn), self.sinkhorn_iters,
            self.power)
        cam_maps = cams.transpose(1, 2).reshape(b, k, h, w)
        boxes = box_masks_from_maps(
            cam_maps,
            self.box_threshold if box_threshold is None else box_threshold)
        src = (boxes * cam_maps).reshape(b, k, p).transpose(1, 2)  # (B, P, K)
        refined = (affinity @ src).transpose(1, 2).reshape(b, k, h, w)
        return refined, boxes, affinity

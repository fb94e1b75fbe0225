# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCEL pseudo-label generator: CAA refinement → background → PAR → argmax.

EXCEL.md §5.1-5.3 (quirk 12: no ignore pixels).
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .affinity import AttentionAffinity, minmax_upsample
from .par import PAR


def present_classes(cls_labels: Tensor) -> Tuple[Tensor, Tensor]:
    """Pad the present classes of each image into a (B, Kmax) layout.

    Returns ``(class_idx, valid)``: class indices in increasing order
    (padding 0) and a bool validity mask. ``Kmax`` ≥ 1.
    """
    b, k = cls_labels.shape
    present = cls_labels > 0
    ar = torch.arange(k, device=cls_labels.device).expand(b, k)
    order = torch.argsort(torch.where(present, ar, ar + k), dim=1)
    counts = present.sum(1)
    kmax = max(int(counts.max().item()) if b > 0 else 0, 1)
    class_idx = order[:, :kmax]
    valid = torch.arange(
        kmax, device=cls_labels.device).unsqueeze(0) < counts.unsqueeze(1)
    return torch.where(valid, class_idx, torch.zeros_like(class_idx)), valid


def denormalize_uint8(inputs: Tensor, mean: Sequence[float],
                      std: Sequence[float]) -> Tensor:
    """Training images for PAR as the official ExCEL passes them.

    ``uint8(x · std + mean) / 255`` per channel (truncation, so values like
    122.99998 become 122). PAR is invariant to per-channel affine maps but not
    to this truncation: passing the normalised inputs directly changes about
    1 % of the pseudo-label pixels on the parity fixtures.

    Args:
        inputs: (B, C, H, W) normalised images.
        mean, std: the per-channel normalisation (0-255 scale).
    """
    c = inputs.shape[1]
    if len(mean) != c or len(std) != c:
        raise ValueError(f'mean/std need {c} values, got {len(mean)} and '
                         f'{len(std)}')
    out = torch.empty_like(inputs)
    for i in range(c):  # scalar per channel, as the official code computes
        out[:, i] = inputs[:, i] * float(std[i]) + float(mean[i])
    return out.to(torch.uint8).to(inputs.dtype) / 255.0


def infer_grid(num_patches: int, image_hw: Sequence[int]) -> Tuple[int, int]:
    """(h, w) with h·w = P and the image aspect ratio."""
    hh, ww = image_hw
    h = int(round(math.sqrt(num_patches * hh / ww)))
    if h < 1 or num_patches % h:
        raise ValueError(
            f'cannot infer the patch grid of P={num_patches} for an '
            f'image of {hh}x{ww}; pass grid_hw')
    return h, num_patches // h


@MODELS.register_module()
class ExCELPseudoLabeler(nn.Module):
    """Pseudo labels from patch CAMs, attention and the image (§5).

    Per image and present class: CAA refinement (:class:`AttentionAffinity`),
    min–max ``(x − min) / (1e-7 + max(x − min))``, bilinear upsampling
    (align_corners=False) to the image size, ``bg = (1 − max_c)^bg_power``,
    PAR on ``[bg, cams]``, argmax, mapped to 0 (background) / c + 1.

    Classes are padded to a (B, Kmax) layout with a validity mask, so all
    images and classes run in one batch. An image without any foreground
    label gets an all-background pseudo label (bg = 1 everywhere). No pixel
    is ignored (quirk 12): crop padding is labelled too.

    Args:
        affinity: config of :class:`AttentionAffinity`
            (default: last 6 layers, τ = 0.79).
        par: config of :class:`PAR` (dilations, num_iter, w1, w2).
        bg_power: exponent of the background score (1).
        norm_eps: epsilon of the per-class min–max (1e-7).
        use_affinity: apply CAA (§5.1). ``False`` (with ``use_par=False``)
            gives the plain CAM baseline: raw patch-text maps, min–max,
            background score, argmax.
        use_par: apply PAR (§5.4).
    """

    def __init__(self,
                 affinity: Optional[dict] = None,
                 par: Optional[dict] = None,
                 bg_power: float = 1.0,
                 norm_eps: float = 1e-7,
                 use_affinity: bool = True,
                 use_par: bool = True) -> None:
        super().__init__()
        affinity = dict(affinity or {})
        affinity.pop('type', None)
        par = dict(par or {})
        par.pop('type', None)
        self.affinity = AttentionAffinity(**affinity)
        self.par = PAR(**par)
        self.bg_power = bg_power
        self.norm_eps = norm_eps
        self.use_affinity = use_affinity
        self.use_par = use_par

    @torch.no_grad()
    def forward(
            self,
            cams: Tensor,
            attn_weights: Tensor,
            cls_labels: Tensor,
            images: Tensor,
            seg_attn: Optional[Tensor] = None,
            grid_hw: Optional[Tuple[int, int]] = None) -> Dict[str, Tensor]:
        """Generate pseudo labels.

        Args:
            cams: (B, P, K_fg) patch CAMs (static or LVC).
            attn_weights: (L, B, N, N) encoder attention.
            cls_labels: (B, K_fg) multi-hot image labels.
            images: (B, 3, H, W) images, any per-channel normalisation; H×W is
                the pseudo-label size.
            seg_attn: optional (B, P, P) decoder affinity (after the switch).
            grid_hw: patch grid; inferred from P and the image shape if None.

        Returns:
            dict with ``pseudo_labels`` (B, H, W) long, ``class_idx`` /
            ``valid`` (B, Kmax), ``refined`` (B, Kmax, h, w) raw refined maps,
            ``box_masks`` (B, Kmax, h, w), ``cams_with_bkg`` (B, 1 + Kmax, H, W)
            before PAR and ``refined_cams`` (B, 1 + Kmax, H, W) after PAR
            (padded classes are zero).
        """
        b, p, k_fg = cams.shape
        if cls_labels.shape != (b, k_fg):
            raise ValueError(
                f'cls_labels must be (B, K_fg) = {(b, k_fg)}, got '
                f'{tuple(cls_labels.shape)}')
        if images.dim() != 4 or images.shape[0] != b:
            raise ValueError(
                f'images must be (B={b}, 3, H, W), got {tuple(images.shape)}')
        hh, ww = images.shape[-2:]
        grid_hw = tuple(grid_hw) if grid_hw is not None else infer_grid(
            p, (hh, ww))
        class_idx, valid = present_classes(cls_labels)
        sel = cams.gather(2, class_idx.unsqueeze(1).expand(b, p, -1))
        if self.use_affinity:
            refined, boxes, _ = self.affinity(attn_weights, sel, grid_hw,
                                              seg_attn)
        else:
            refined = sel.transpose(1, 2).reshape(b, -1, *grid_hw)
            boxes = torch.ones_like(refined)
        up = minmax_upsample(refined, (hh, ww), self.norm_eps)
        vmask = valid[:, :, None, None].to(up.dtype)
        up = up * vmask
        bg = (1 - up.amax(1, keepdim=True)).pow(self.bg_power)
        with_bkg = torch.cat([bg, up], 1)
        out = self.par(images, with_bkg) if self.use_par else with_bkg
        chan_valid = torch.cat([valid.new_ones(b, 1), valid], 1)
        scores = out.masked_fill(~chan_valid[:, :, None, None], float('-inf'))
        keys = torch.cat([class_idx.new_zeros(b, 1), class_idx + 1], 1)
        labels = keys.gather(1, scores.argmax(1).flatten(1)).view(b, hh, ww)
        return dict(
            pseudo_labels=labels,
            class_idx=class_idx,
            valid=valid,
            refined=refined,
            box_masks=boxes,
            cams_with_bkg=with_bkg,
            refined_cams=out)

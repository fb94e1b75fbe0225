# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCEL pseudo-label generator: CAA refinement → background → PAR → argmax.

docs/methods/excel.md §5.1-5.3 (official behaviour 12: no ignore pixels).
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


def stack_cls_labels(data_samples: Sequence, num_fg: int,
                     method: str) -> Tensor:
    """Image-level label vectors of a batch, (B, ``num_fg``) float.

    Every sample must carry ``gt_cls_label`` over the model's ``num_fg``
    foreground classes; a vector of another length (e.g. VOC's 20 labels fed
    to an 80-class COCO model) would select the wrong text embeddings without
    an error, so it is refused naming both lengths.
    """
    labels = []
    for i, ds in enumerate(data_samples):
        if not hasattr(ds, 'gt_cls_label'):
            raise KeyError(
                f'{method} needs image-level labels: every data sample must '
                'carry gt_cls_label (LoadImageLevelLabels + PackWSSSInputs)')
        lab = torch.as_tensor(ds.gt_cls_label).flatten()
        if lab.numel() != num_fg:
            name = getattr(ds, 'img_path', None) or f'sample {i}'
            raise ValueError(
                f'{method}: the image-level label vector of {name} has '
                f'{lab.numel()} entries but the model has {num_fg} '
                'foreground classes (dataset and model class lists differ?)')
        labels.append(lab)
    if not labels:
        raise ValueError(f'{method}: empty batch of data samples')
    return torch.stack(labels).float()


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
    is ignored (official behaviour 12): crop padding is labelled too.

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
    def refine(self,
               cams: Tensor,
               attn_weights: Tensor,
               cls_labels: Tensor,
               grid_hw: Tuple[int, int],
               seg_attn: Optional[Tensor] = None,
               box_threshold: Optional[float] = None) -> Dict[str, Tensor]:
        """CAA refinement (§5.1-5.2) of the present classes' patch maps
        (``box_threshold`` overrides τ for this call).

        Returns ``refined`` / ``box_masks`` (B, Kmax, h, w) and
        ``class_idx`` / ``valid`` (B, Kmax) (see :func:`present_classes`).
        """
        b, p, k_fg = cams.shape
        if cls_labels.shape != (b, k_fg):
            raise ValueError(
                f'cls_labels must be (B, K_fg) = {(b, k_fg)}, got '
                f'{tuple(cls_labels.shape)}')
        class_idx, valid = present_classes(cls_labels)
        sel = cams.gather(2, class_idx.unsqueeze(1).expand(b, p, -1))
        if self.use_affinity:
            refined, boxes, _ = self.affinity(attn_weights, sel,
                                              tuple(grid_hw), seg_attn,
                                              box_threshold)
        else:
            refined = sel.transpose(1, 2).reshape(b, -1, *grid_hw)
            boxes = torch.ones_like(refined)
        return dict(
            refined=refined, box_masks=boxes, class_idx=class_idx,
            valid=valid)

    def with_background(self, refined: Tensor, valid: Tensor,
                        size: Tuple[int, int]) -> Tensor:
        """Min–max, bilinear upsampling to ``size``, ``bg = (1 − max)^p``:
        (B, 1 + Kmax, H, W), padded classes zero (§5.3)."""
        if refined.shape[1] == 0:  # no foreground label: all background
            up = refined.new_zeros(refined.shape[0], 0, *size)
        else:
            up = minmax_upsample(refined, size, self.norm_eps)
            up = up * valid[:, :, None, None].to(up.dtype)
        peak = up.amax(1, keepdim=True) if up.shape[1] else up.new_zeros(
            up.shape[0], 1, *size)
        bg = (1 - peak).pow(self.bg_power)
        return torch.cat([bg, up], 1)

    @torch.no_grad()
    def label_at_size(self, refined: Tensor, class_idx: Tensor,
                      image: Tensor,
                      size: Tuple[int, int]) -> Dict[str, Tensor]:
        """One image's pseudo label at ``size`` (e.g. its original size).

        ``refined`` (k, h, w) CAA maps of its ``class_idx`` (k,) classes;
        ``image`` (1, 3, H', W') any per-channel normalisation (PAR resizes
        it to ``size`` with ``align_corners=True``). Returns
        ``cams_with_bkg`` / ``refined_cams`` (1 + k, H, W) before / after
        PAR, ``keys`` (1 + k,) and ``pseudo_label`` (H, W) long.
        """
        k = refined.shape[0]
        valid = torch.ones(1, k, dtype=torch.bool, device=refined.device)
        with_bkg = self.with_background(refined[None], valid, tuple(size))
        out = self.par(image, with_bkg) if self.use_par else with_bkg
        keys = torch.cat([class_idx.new_zeros(1), class_idx + 1])
        return dict(
            cams_with_bkg=with_bkg[0],
            refined_cams=out[0],
            keys=keys,
            pseudo_label=keys[out[0].argmax(0)])

    @torch.no_grad()
    def forward(
            self,
            cams: Tensor,
            attn_weights: Tensor,
            cls_labels: Tensor,
            images: Tensor,
            seg_attn: Optional[Tensor] = None,
            grid_hw: Optional[Tuple[int, int]] = None) -> Dict[str, Tensor]:
        """Generate pseudo labels of a training batch at the image size.

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
        b, p, _ = cams.shape
        if images.dim() != 4 or images.shape[0] != b:
            raise ValueError(
                f'images must be (B={b}, 3, H, W), got {tuple(images.shape)}')
        hh, ww = images.shape[-2:]
        grid_hw = tuple(grid_hw) if grid_hw is not None else infer_grid(
            p, (hh, ww))
        r = self.refine(cams, attn_weights, cls_labels, grid_hw, seg_attn)
        class_idx, valid = r['class_idx'], r['valid']
        with_bkg = self.with_background(r['refined'], valid, (hh, ww))
        out = self.par(images, with_bkg) if self.use_par else with_bkg
        chan_valid = torch.cat([valid.new_ones(b, 1), valid], 1)
        scores = out.masked_fill(~chan_valid[:, :, None, None], float('-inf'))
        keys = torch.cat([class_idx.new_zeros(b, 1), class_idx + 1], 1)
        labels = keys.gather(1, scores.argmax(1).flatten(1)).view(b, hh, ww)
        return dict(
            pseudo_labels=labels,
            class_idx=class_idx,
            valid=valid,
            refined=r['refined'],
            box_masks=r['box_masks'],
            cams_with_bkg=with_bkg,
            refined_cams=out)

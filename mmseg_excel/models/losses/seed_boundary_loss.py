# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Seeding and constrain-to-boundary losses (SEC / DSRG style) with a dense
CRF of the prediction, as WeakCLIP's decode head uses them
(docs/methods/weakclip.md §4).

* cues: one-hot of the pseudo mask at the loss resolution (``ignore`` → no
  cue);
* ``P = softmax(Z) + min_prob``, renormalised (:func:`floored_softmax`);
* seeding: balanced background / foreground ``−log P`` over the cue pixels;
* boundary: ``mean Σ_k Q_k log(clip(Q_k / P_k, 0.05, 20))`` against the CRF
  posterior ``Q`` of ``P`` on the de-normalised, uint8-truncated image
  (no gradient through ``Q``).
"""
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def floored_softmax(logits: Tensor, min_prob: float = 1e-7) -> Tensor:
    """Softmax over dim 1, plus ``min_prob``, renormalised."""
    p = logits.softmax(dim=1) + min_prob
    return p / p.sum(dim=1, keepdim=True)


def cues_from_mask(mask: Tensor, num_classes: int,
                   size: Sequence[int]) -> Tensor:
    """(B, K, h, w) float one-hot cues of a (B, 1, H, W) / (B, H, W) label
    map resized with ``nearest`` to ``size``; labels ≥ K (ignore) give no
    cue."""
    if mask.dim() == 3:
        mask = mask[:, None]
    m = F.interpolate(mask.float(), size=tuple(size), mode='nearest')[:, 0]
    m = m.long()
    valid = (m >= 0) & (m < num_classes)
    cues = F.one_hot(m.clamp(0, num_classes - 1), num_classes)
    cues = cues.permute(0, 3, 1, 2).float()
    return cues * valid[:, None].float()


def seeding_loss(probs: Tensor, cues: Tensor, eps: float = 1e-4) -> Tensor:
    """Balanced seeding loss: ``−mean_b Σ_bg log P_0 / max(n_bg, eps)
    − mean_b Σ_fg log P_c / max(n_fg, eps)``."""
    logp = probs.log()
    bg, fg = cues[:, 0], cues[:, 1:]
    n_bg = bg.sum(dim=(1, 2)).clamp_min(eps)
    n_fg = fg.sum(dim=(1, 2, 3)).clamp_min(eps)
    s_bg = (bg * logp[:, 0]).sum(dim=(1, 2))
    s_fg = (fg * logp[:, 1:]).sum(dim=(1, 2, 3))
    return -(s_bg / n_bg).mean() - (s_fg / n_fg).mean()


def boundary_loss(probs: Tensor, q: Tensor, low: float = 0.05,
                  high: float = 20.0) -> Tensor:
    """``mean_{b,pixels} Σ_k Q log(clip(Q / P, low, high))``."""
    q = q.to(probs.dtype)
    return (q * (q / probs).clamp(low, high).log()).sum(dim=1).mean()


def crf_images_uint8(inputs: Tensor, size: Sequence[int], mean: Sequence[float],
                     std: Sequence[float]) -> np.ndarray:
    """(B, h, w, 3) uint8 RGB images for the CRF's bilateral term: the
    normalised inputs zoomed to ``size`` with an order-1 spline
    (``scipy.ndimage.zoom``), de-normalised and truncated to uint8 (the
    official cast: 254.99998 → 254)."""
    from scipy.ndimage import zoom
    x = inputs.detach().float().cpu().numpy()
    h, w = size
    x = zoom(x, (1.0, 1.0, h / x.shape[2], w / x.shape[3]), order=1)
    # float32 like the official img_norm_cfg arrays
    x = x.transpose(0, 2, 3, 1) * np.asarray(std, np.float32) \
        + np.asarray(mean, np.float32)
    return np.ascontiguousarray(x, dtype=np.uint8)


@MODELS.register_module()
class SeedingBoundaryLoss(nn.Module):
    """Seeding + CRF boundary losses of a segmentation prediction.

    Args:
        crf: ``DenseCRF`` config (official: 10 iterations, Gaussian sxy 3
            compat 3, bilateral sxy 80 srgb 13 compat 10); its
            ``num_workers`` spreads the batch over a process pool.
        min_prob: floor added to the softmax (1e-7).
        crf_min_prob: clamp of the probabilities given to the CRF and of its
            posterior before renormalising (1e-4).
        loss_weight: weight of both losses (1).
    """

    def __init__(self,
                 crf: dict = dict(type='DenseCRF', iter_max=10, pos_xy_std=3,
                                  pos_w=3, bi_xy_std=80, bi_rgb_std=13,
                                  bi_w=10),
                 min_prob: float = 1e-7,
                 crf_min_prob: float = 1e-4,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.crf = MODELS.build(crf)
        self.min_prob = min_prob
        self.crf_min_prob = crf_min_prob
        self.loss_weight = loss_weight

    def crf_posterior(self, images_uint8: np.ndarray, probs: Tensor) -> Tensor:
        """CRF posterior of ``probs`` clamped ≥ ``crf_min_prob`` (a copy),
        clamped again, renormalised (float64, no gradient)."""
        p_in = probs.detach().cpu().clamp_min(self.crf_min_prob).numpy()
        q = np.stack(self.crf.inference_batch(
            images_uint8, p_in, prepared=True)).astype(np.float64)
        q = np.maximum(q, self.crf_min_prob)
        q = q / q.sum(axis=1, keepdims=True)
        return torch.from_numpy(q).to(probs.device)

    def forward(self, logits: Tensor, mask: Tensor,
                images_uint8: np.ndarray,
                q: Optional[Tensor] = None) -> dict:
        """``logits`` (B, K, h, w) at the loss resolution, ``mask`` the
        pseudo labels (B, 1, H, W), ``images_uint8`` (B, h, w, 3).
        Returns ``loss_seeding``, ``loss_boundary``."""
        probs = floored_softmax(logits, self.min_prob)
        cues = cues_from_mask(mask, logits.shape[1], logits.shape[-2:])
        if q is None:
            q = self.crf_posterior(images_uint8, probs)
        return dict(
            loss_seeding=self.loss_weight * seeding_loss(probs, cues),
            loss_boundary=self.loss_weight * boundary_loss(
                probs, q.float()))

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""CLIP-ES confidence-guided loss (CGL; paper Eq. 8-9, docs/methods/clip_es.md
§6.3).

``Conf = max(1 − max_c X_c, max_c X_c)`` on the CAMs (Eq. 8); the
segmentation cross-entropy counts at a pixel only where ``Conf ≥ μ`` (Eq. 9).
The official code path instead writes 255 into the pseudo mask where the CRF
posterior's maximum is below 0.95 and trains with ``ignore_index=255``; with
``reduction='kept'`` (default) the loss below equals that path for any
confidence map (CAM- or CRF-based).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

try:  # the registry needs mmseg (mmcv.ops); the maths does not
    from mmseg.registry import MODELS
except ImportError:  # pragma: no cover - exercised only without mmcv
    MODELS = None


def _register(cls):
    return MODELS.register_module()(cls) if MODELS is not None else cls


def cam_confidence(cams: Tensor) -> Tensor:
    """Eq. 8: ``max(1 − max_k X_k, max_k X_k)``; cams (B, K, h, w) → (B, h, w).

    Padded (absent) class channels must hold 0 (they then never win).
    """
    if cams.dim() != 4:
        raise ValueError(f'cams must be (B, K, h, w), got {tuple(cams.shape)}')
    fg = cams.amax(1)
    return torch.maximum(1 - fg, fg)


def cams_to_pseudo_label(cams: Tensor,
                         keys: Tensor,
                         bg_power: float = 1.0) -> Tensor:
    """No-CRF rule ``[0, keys + 1][argmax([(1 − max_k X_k)^α; X])]`` (§6.1).

    Args:
        cams: (B, K, h, w) CAMs in [0, 1].
        keys: (B, K) 0-based class ids (label order).
        bg_power: exponent α of the background score.

    Returns:
        (B, h, w) long labels, 0 = background, c + 1 = class c.
    """
    if keys.shape != cams.shape[:2]:
        raise ValueError(f'keys {tuple(keys.shape)} do not match cams '
                         f'{tuple(cams.shape)}')
    bg = (1 - cams.amax(1, keepdim=True))**bg_power
    idx = torch.cat([bg, cams], 1).argmax(1)  # (B, h, w)
    table = torch.cat([keys.new_zeros(keys.shape[0], 1), keys + 1], 1)
    return table.gather(1, idx.flatten(1)).view_as(idx).long()


def confidence_ignore_mask(label: Tensor,
                           conf: Tensor,
                           mu: float = 0.95,
                           ignore_index: int = 255) -> Tensor:
    """Pseudo mask with ``ignore_index`` where ``conf < mu`` (ties kept).

    This is how the official code implements CGL (§6.3: CRF max-probability
    below 0.95 → 255).
    """
    if label.shape != conf.shape:
        raise ValueError(f'label {tuple(label.shape)} and confidence '
                         f'{tuple(conf.shape)} differ in shape')
    return label.masked_fill(conf < mu, ignore_index)


def confidence_guided_loss(cls_score: Tensor,
                           label: Tensor,
                           conf: Optional[Tensor] = None,
                           mu: float = 0.95,
                           reduction: str = 'kept',
                           ignore_index: int = 255) -> Tensor:
    """Eq. 9: CE where ``conf ≥ mu`` (and label ≠ ignore), else 0.

    ``reduction='kept'``: sum / number of kept pixels (= CE with
    ``ignore_index`` on the 255-ignored mask, the code path); ``'all'``:
    sum / all pixels; ``'none'``: the (B, h, w) loss map.
    """
    if reduction not in ('kept', 'all', 'none'):
        raise ValueError(
            f"reduction must be 'kept', 'all' or 'none', got {reduction!r}")
    if cls_score.shape[-2:] != label.shape[-2:]:
        raise ValueError(f'prediction {tuple(cls_score.shape)} and label '
                         f'{tuple(label.shape)} differ in size')
    label = label.long()
    keep = label != ignore_index
    if conf is not None:
        if conf.shape != label.shape:
            raise ValueError(f'confidence {tuple(conf.shape)} and label '
                             f'{tuple(label.shape)} differ in shape')
        keep = keep & (conf >= mu)
    ce = F.cross_entropy(
        cls_score,
        label.masked_fill(~keep, ignore_index),
        reduction='none',
        ignore_index=ignore_index)
    loss_map = ce * keep.to(ce.dtype)
    if reduction == 'none':
        return loss_map
    if reduction == 'all':
        return loss_map.sum() / max(loss_map.numel(), 1)
    return loss_map.sum() / keep.sum().clamp(min=1).to(ce.dtype)


@_register
class ConfidenceGuidedLoss(nn.Module):
    """CLIP-ES confidence-guided loss (CGL, Eq. 8-9).

    Args:
        mu (float): confidence threshold μ (official 0.95).
        reduction (str): 'kept' (mean over kept pixels, the code path),
            'all' (mean over all pixels) or 'none'.
        loss_weight (float): multiplier.
        loss_name (str): key in the loss dict (must contain 'loss_').
        ignore_index (int): label of ignored pixels.
    """

    def __init__(self,
                 mu: float = 0.95,
                 reduction: str = 'kept',
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_cgl',
                 ignore_index: int = 255) -> None:
        super().__init__()
        if reduction not in ('kept', 'all', 'none'):
            raise ValueError(
                f"reduction must be 'kept', 'all' or 'none', got {reduction!r}"
            )
        if not 0.0 <= mu <= 1.0:
            raise ValueError(f'mu must lie in [0, 1], got {mu}')
        self.mu = mu
        self.reduction = reduction
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        self.ignore_index = ignore_index

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                conf: Optional[Tensor] = None,
                cams: Optional[Tensor] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        """Args: cls_score (B, C, h, w) logits; label (B, h, w); either a
        confidence map ``conf`` (B, h, w) or the ``cams`` (B, K, h, w) it is
        computed from (Eq. 8); with neither, plain CE with ``ignore_index``
        (the label is assumed already 255-ignored, the code path)."""
        if conf is None and cams is not None:
            conf = cam_confidence(cams)
        ignore = self.ignore_index if ignore_index is None else ignore_index
        return self.loss_weight * confidence_guided_loss(
            cls_score, label, conf, self.mu, self.reduction, ignore)

    @property
    def loss_name(self) -> str:
        """Name in the loss dict (``loss_`` prefix: back-propagated)."""
        return self._loss_name

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Background/foreground balanced cross-entropy (ExCEL, docs/methods/excel.md
§7.1)."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def balanced_cross_entropy(cls_score: Tensor,
                           label: Tensor,
                           ignore_index: int = 255,
                           eps: float = 1e-6) -> Tensor:
    """Mean of the background and the foreground cross-entropy (§7.1).

    ``L = (Σ_{y=0} CE / (#bg + eps) + Σ_{y∉{0,ignore}} CE / (#fg + eps)) / 2``
    with counts over the whole batch.

    Args:
        cls_score: logits (B, K, H, W), already at the label resolution.
        label: (B, H, W) integer labels; 0 = background, ``ignore_index``
            is ignored.
        ignore_index: label value excluded from both terms.
        eps: added to each pixel count (1e-6 in the official code).
    """
    if cls_score.dim() != 4 or label.dim() != 3:
        raise ValueError('balanced_cross_entropy expects logits (B, K, H, W) '
                         f'and labels (B, H, W), got {tuple(cls_score.shape)} '
                         f'and {tuple(label.shape)}')
    if cls_score.shape[0] != label.shape[0] or \
            cls_score.shape[2:] != label.shape[1:]:
        raise ValueError(f'logits {tuple(cls_score.shape)} and labels '
                         f'{tuple(label.shape)} do not match (resize first)')
    label = label.long()
    ce = F.cross_entropy(
        cls_score, label, ignore_index=ignore_index, reduction='none')
    bg = label == 0
    fg = (label != 0) & (label != ignore_index)
    bg_loss = (ce * bg).sum() / (bg.sum() + eps)
    fg_loss = (ce * fg).sum() / (fg.sum() + eps)
    return (bg_loss + fg_loss) * 0.5


@MODELS.register_module()
class BalancedCrossEntropyLoss(nn.Module):
    """ExCEL segmentation loss: background and foreground CE averaged (§7.1).

    Args:
        loss_weight: multiplier of the loss (1.0 in ExCEL).
        ignore_index: ignored label value (255).
        loss_name: key in the loss dict; must start with ``loss_``.
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 ignore_index: int = 255,
                 loss_name: str = 'loss_seg'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f'loss_name must start with "loss_" to be '
                             f'back-propagated, got {loss_name!r}')
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        """Weighted balanced CE of logits (B, K, H, W) vs labels (B, H, W)."""
        if weight is not None:
            raise NotImplementedError(
                'BalancedCrossEntropyLoss does not support pixel weights')
        ignore = self.ignore_index if ignore_index is None else ignore_index
        return self.loss_weight * balanced_cross_entropy(
            cls_score, label, ignore_index=ignore)

    @property
    def loss_name(self) -> str:
        """Name of the loss item (``loss_seg``)."""
        return self._loss_name

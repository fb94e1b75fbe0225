# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCEL affinity ("diversity") loss and its labels (docs/methods/excel.md
§7.2)."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def window_mask(grid: Tuple[int, int],
                radius: int,
                device: Optional[torch.device] = None) -> Tensor:
    """(P, P) bool: patch j lies in the (2r+1)² square window of patch i.

    Chebyshev distance ``max(|Δrow|, |Δcol|) <= radius`` on the ``h×w`` grid
    (row-major flattening); symmetric, diagonal included.
    """
    h, w = int(grid[0]), int(grid[1])
    if radius < 0:
        raise ValueError(f'radius must be >= 0, got {radius}')
    idx = torch.arange(h * w, device=device)
    rows, cols = idx // w, idx % w
    drow = (rows[:, None] - rows[None, :]).abs()
    dcol = (cols[:, None] - cols[None, :]).abs()
    return (drow <= radius) & (dcol <= radius)


def affinity_labels_from_mask(labels: Tensor,
                              grid: Sequence[int],
                              radius: int,
                              ignore_index: int = 255) -> Tensor:
    """Pairwise patch labels from a label map (§7.2, official behaviour 13).

    The map is downsampled to ``grid`` with nearest interpolation (for a
    16× stride this picks the top-left pixel of each patch, as the official
    ``cams_to_affinity_label``). Then ``Z[i, j] = 1`` if both patches carry
    the same label, else 0; ``Z[i, j] = ignore_index`` when j is outside the
    square window of radius ``radius`` around i, or either label is
    ``ignore_index``. The diagonal is NOT ignored.

    Args:
        labels: (B, H, W) integer label map.
        grid: (h, w) patch grid.
        radius: Chebyshev window radius (8 in ExCEL).
        ignore_index: ignore value in ``labels`` and in the output.

    Returns:
        (B, h·w, h·w) uint8 tensor with values in {0, 1, ignore_index}.
    """
    if labels.dim() != 3:
        raise ValueError('affinity_labels_from_mask expects labels (B, H, W), '
                         f'got {tuple(labels.shape)}')
    h, w = int(grid[0]), int(grid[1])
    small = F.interpolate(
        labels[:, None].float(), size=(h, w), mode='nearest').flatten(1)
    aff = (small[:, :, None] == small[:, None, :]).to(torch.uint8)
    ignore = ~window_mask((h, w), radius, labels.device)[None]
    is_ign = small == ignore_index
    ignore = ignore | is_ign[:, :, None] | is_ign[:, None, :]
    return aff.masked_fill(ignore, ignore_index)


def affinity_loss(aff_pred: Tensor,
                  aff_label: Tensor,
                  ignore_index: int = 255) -> Tensor:
    """``0.5·Σ_{Z=1}(1−Â)/(#pos+1) + 0.5·Σ_{Z=0}Â/(#neg+1)`` (§7.2).

    Counts are over the whole batch; ``ignore_index`` entries are neither
    positive nor negative.
    """
    if aff_pred.shape != aff_label.shape:
        raise ValueError(f'affinity prediction {tuple(aff_pred.shape)} and '
                         f'labels {tuple(aff_label.shape)} differ in shape')
    pos = aff_label == 1
    neg = aff_label == 0
    pos_loss = (pos * (1 - aff_pred)).sum() / (pos.sum() + 1)
    neg_loss = (neg * aff_pred).sum() / (neg.sum() + 1)
    return 0.5 * pos_loss + 0.5 * neg_loss


@MODELS.register_module()
class ExCELAffinityLoss(nn.Module):
    """Affinity loss of ExCEL on the predicted affinity Â (§7.2).

    Args:
        radius: window radius of the affinity labels (8).
        loss_weight: multiplier (ExCEL uses 0.1, ``w_diver``).
        ignore_index: ignore value of the labels (255).
        loss_name: key in the loss dict; must start with ``loss_``.
    """

    def __init__(self,
                 radius: int = 8,
                 loss_weight: float = 1.0,
                 ignore_index: int = 255,
                 loss_name: str = 'loss_aff'):
        super().__init__()
        if not loss_name.startswith('loss_'):
            raise ValueError(f'loss_name must start with "loss_" to be '
                             f'back-propagated, got {loss_name!r}')
        if radius < 0:
            raise ValueError(f'radius must be >= 0, got {radius}')
        self.radius = radius
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def labels_from_mask(self, labels: Tensor, grid: Sequence[int]) -> Tensor:
        """Affinity labels (B, P, P) of a label map with this radius."""
        return affinity_labels_from_mask(labels, grid, self.radius,
                                         self.ignore_index)

    def forward(self, aff_pred: Tensor, aff_label: Tensor, **kwargs) -> Tensor:
        """Weighted loss of Â (B, P, P) against labels (B, P, P)."""
        return self.loss_weight * affinity_loss(aff_pred, aff_label,
                                                self.ignore_index)

    @property
    def loss_name(self) -> str:
        """Name of the loss item (``loss_aff``)."""
        return self._loss_name

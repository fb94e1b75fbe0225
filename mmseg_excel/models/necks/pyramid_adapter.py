# Copyright (c) mmseg-excel contributors. All rights reserved.
"""WeakCLIP pyramid adapter (docs/methods/weakclip.md §1).

Turns the four single-scale ViT levels (B, D, h, w) into a feature pyramid
at ×4 / ×2 / ×1 / ÷2 of the patch grid, each level starting with a
one-group GroupNorm:

* ×4: GroupNorm → ConvTranspose 2×2/2 → norm (SyncBN) → GELU →
  ConvTranspose 2×2/2
* ×2: GroupNorm → ConvTranspose 2×2/2
* ×1: GroupNorm
* ÷2: GroupNorm → MaxPool 2×2/2
"""
from typing import List, Sequence

import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor


def _level(dim: int, scale: float, norm_cfg: dict) -> nn.Module:
    gn = nn.GroupNorm(1, dim)
    if scale == 4:
        return nn.Sequential(
            gn, nn.ConvTranspose2d(dim, dim, 2, 2),
            build_norm_layer(norm_cfg, dim)[1], nn.GELU(),
            nn.ConvTranspose2d(dim, dim, 2, 2))
    if scale == 2:
        return nn.Sequential(gn, nn.ConvTranspose2d(dim, dim, 2, 2))
    if scale == 1:
        return nn.Sequential(gn)
    if scale == 0.5:
        return nn.Sequential(gn, nn.MaxPool2d(2, 2))
    raise ValueError(f'pyramid adapter scale must be 4, 2, 1 or 0.5, got '
                     f'{scale}')


@MODELS.register_module()
class PyramidAdapter(BaseModule):
    """Pyramid adapter on multi-level ViT features.

    Args:
        in_channels: ViT width D.
        scales: per level its up-sampling factor (official (4, 2, 1, 0.5)).
        norm_cfg: the norm after the first transposed conv of the ×4 level
            (official SyncBN; plain BN on one process).
    """

    def __init__(self,
                 in_channels: int,
                 scales: Sequence[float] = (4, 2, 1, 0.5),
                 norm_cfg: dict = dict(type='SyncBN', requires_grad=True),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.scales = tuple(scales)
        self.levels = nn.ModuleList(
            _level(in_channels, s, norm_cfg) for s in self.scales)

    def forward(self, feats: Sequence[Tensor]) -> List[Tensor]:
        if len(feats) != len(self.levels):
            raise ValueError(f'PyramidAdapter has {len(self.levels)} levels '
                             f'but got {len(feats)} feature maps')
        return [level(f) for level, f in zip(self.levels, feats)]

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCEL trainable head: multi-layer fusion, transformer decoder, affinity.

docs/methods/excel.md §6 (head), §7 (losses via
:meth:`ExCELHead.loss_by_feat`).

Data flow::

    per-layer CLIP tokens (L, B, N, D) ─┬─ layer j: Linear(D→C) ReLU Linear(C→C)
                                        └─ concat (B, L·C, h, w) → Conv1x1 → C
    f = Dropout2d(fused)                                        (§6.1, official
    behaviour 15)
    seg = Conv1x1(C→K)(TransformerDecoder(f))                   (§6.2)
    Â   = sigmoid(γ·(G − β·mean(G))),  G = cos-sim of f tokens  (§6.3, official
    behaviour 14)

The segmentation logits, ``f`` and ``Â`` are returned together by
:meth:`ExCELHead.forward` as a dict ``{'seg', 'fused', 'affinity'}``.
"""
import math
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.losses import accuracy
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

HeadInput = Union[Tensor, Sequence[Tensor]]


class FP32LayerNorm(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back (CLIP's fp16-safe LN)."""

    def forward(self, x: Tensor) -> Tensor:
        """Normalise in fp32, return in the input dtype."""
        return super().forward(x.float()).to(x.dtype)


class QuickGELU(nn.Module):
    """CLIP's ``x·σ(1.702x)``."""

    def forward(self, x: Tensor) -> Tensor:
        """Apply QuickGELU."""
        return x * torch.sigmoid(1.702 * x)


class LayerProjection(nn.Module):
    """Per-layer token embedding ``Linear(D→C) → ReLU → Linear(C→C)`` (§6.1)."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.fc1 = nn.Linear(in_channels, channels)
        self.fc2 = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        """(..., D) → (..., C)."""
        return self.fc2(F.relu(self.fc1(x)))


class DecoderBlock(nn.Module):
    """Pre-LN transformer block with QuickGELU MLP (§6.2), batch-first.

    Key names follow the official/CLIP block (``attn.in_proj_weight``,
    ``attn.out_proj``, ``ln_1``, ``mlp.c_fc``, ``mlp.c_proj``, ``ln_2``).
    """

    def __init__(self, channels: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        hidden = int(channels * mlp_ratio)
        self.attn = nn.MultiheadAttention(
            channels, num_heads, batch_first=True)
        self.ln_1 = FP32LayerNorm(channels)
        self.mlp = nn.Sequential(
            OrderedDict([('c_fc', nn.Linear(channels, hidden)),
                         ('gelu', QuickGELU()),
                         ('c_proj', nn.Linear(hidden, channels))]))
        self.ln_2 = FP32LayerNorm(channels)

    def forward(self, x: Tensor) -> Tensor:
        """(B, P, C) → (B, P, C); attention maps are not computed."""
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


def predicted_affinity(fused: Tensor,
                       gamma: float = 3.0,
                       beta: float = 1.0,
                       mean_mode: str = 'batch') -> Tensor:
    """``Â = sigmoid(γ·(G − β·mean(G)))`` with G the token cosines (§6.3).

    Args:
        fused: (B, C, h, w) fused features ``f``.
        gamma: temperature γ (3.0).
        beta: weight of the mean (1.0).
        mean_mode: ``'batch'`` — one scalar mean over the whole (B, P, P)
            tensor, as the official code (official behaviour 14: depends on the
            batch
            composition); ``'image'`` — one mean per image.

    Returns:
        (B, P, P) affinity in (0, 1), P = h·w (row-major).
    """
    u = F.normalize(fused.flatten(2), dim=1)
    g = u.transpose(1, 2).bmm(u)
    if mean_mode == 'batch':
        mean = g.mean()
    elif mean_mode == 'image':
        mean = g.mean(dim=(1, 2), keepdim=True)
    else:
        raise ValueError(f"aff_mean_mode must be 'batch' or 'image', got "
                         f'{mean_mode!r}')
    return torch.sigmoid((g - mean * beta) * gamma)


@MODELS.register_module()
class ExCELHead(BaseDecodeHead):
    """ExCEL head: fusion of all CLIP layers + transformer decoder (§6).

    Input (:meth:`forward`): the per-layer CLIP features, either tokens
    ``(L, B, N, D)`` (N = h·w + 1 with the class token first when
    ``with_cls_token``, row-major patches), maps ``(L, B, D, h, w)``, or a
    list of L maps ``(B, D, h, w)``.

    Output: ``dict(seg=(B, K, h, w) logits, fused=f (B, C, h, w),
    affinity=Â (B, h·w, h·w))``. ``f`` is taken after the fusion Dropout2d
    (official behaviour 15); ``Â`` keeps its graph (the affinity loss trains
    through it).

    Args:
        in_channels: CLIP width D (768 for ViT-B/16).
        channels: fused width C (256).
        num_classes: classes incl. background (21 VOC, 81 COCO).
        num_layers: number of CLIP layers L fused (12 for ViT-B/16).
        num_decoder_layers: transformer decoder blocks (3).
        num_heads: decoder attention heads (8).
        mlp_ratio: decoder MLP ratio (4).
        dropout_ratio: Dropout2d after the fusion conv (0.1); the base
            class' dropout before ``conv_seg`` is not used.
        with_cls_token: token input carries a class token at index 0.
        aff_gamma / aff_beta / aff_mean_mode: see
            :func:`predicted_affinity`.
        loss_decode: segmentation loss config(s) (balanced CE, §7.1).
        loss_aff: affinity loss config (§7.2; weight 0.1, radius 8).
        init_cfg: default ``None`` = PyTorch default initialisation, as
            the official code.

    Checkpoint names (official → ours, see
    ``tools/model_converters/excel2mmseg.py``):
    ``decoder_fts_fuse.linears_modulelist.j.proj(_2)`` → ``layer_projs.j.fc1
    (fc2)``, ``decoder_fts_fuse.linear_fuse`` → ``fuse_conv``,
    ``decoder.transformer.resblocks.i.*`` → ``decoder_layers.i.*``,
    ``decoder.linear_pred`` → ``conv_seg``.
    """

    def __init__(self,
                 in_channels: int = 768,
                 channels: int = 256,
                 *,
                 num_classes: int,
                 num_layers: int = 12,
                 num_decoder_layers: int = 3,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.0,
                 dropout_ratio: float = 0.1,
                 with_cls_token: bool = True,
                 aff_gamma: float = 3.0,
                 aff_beta: float = 1.0,
                 aff_mean_mode: str = 'batch',
                 loss_decode: ConfigType = dict(
                     type='BalancedCrossEntropyLoss', loss_weight=1.0),
                 loss_aff: ConfigType = dict(
                     type='ExCELAffinityLoss', radius=8, loss_weight=0.1),
                 init_cfg=None,
                 **kwargs):
        if not isinstance(in_channels, int):
            raise TypeError('ExCELHead: in_channels is the CLIP width (int), '
                            f'got {in_channels!r}')
        if aff_mean_mode not in ('batch', 'image'):
            raise ValueError("ExCELHead: aff_mean_mode must be 'batch' or "
                             f"'image', got {aff_mean_mode!r}")
        if num_layers < 1 or num_decoder_layers < 0:
            raise ValueError(f'ExCELHead: num_layers={num_layers} must be >= 1'
                             f' and num_decoder_layers={num_decoder_layers} '
                             '>= 0')
        if channels % num_heads:
            raise ValueError(f'ExCELHead: channels={channels} not divisible '
                             f'by num_heads={num_heads}')
        super().__init__(
            in_channels,
            channels,
            num_classes=num_classes,
            dropout_ratio=dropout_ratio,
            loss_decode=loss_decode,
            init_cfg=init_cfg,
            **kwargs)
        self.num_layers = num_layers
        self.with_cls_token = with_cls_token
        self.aff_gamma = aff_gamma
        self.aff_beta = aff_beta
        self.aff_mean_mode = aff_mean_mode
        self.layer_projs = nn.ModuleList(
            LayerProjection(in_channels, channels) for _ in range(num_layers))
        self.fuse_conv = nn.Conv2d(num_layers * channels, channels, 1)
        self.decoder_layers = nn.ModuleList(
            DecoderBlock(channels, num_heads, mlp_ratio)
            for _ in range(num_decoder_layers))
        self.loss_aff = MODELS.build(loss_aff)

    # ------------------------------------------------------------------
    def _layer_tokens(self, inputs: HeadInput,
                      hw: Optional[Sequence[int]]) -> Tuple[Tensor, int, int]:
        """Normalise the input to patch tokens (L, B, P, D) and the grid."""
        if isinstance(inputs, (list, tuple)):
            if not all(isinstance(x, Tensor) and x.dim() == 4 for x in inputs):
                raise ValueError('ExCELHead: a list input must hold L maps '
                                 '(B, D, h, w)')
            inputs = torch.stack(list(inputs))
        if not isinstance(inputs, Tensor):
            raise TypeError('ExCELHead expects per-layer CLIP features as a '
                            f'tensor or list, got {type(inputs).__name__}')
        if inputs.dim() == 5:  # (L, B, D, h, w) maps
            h, w = inputs.shape[-2:]
            tokens = inputs.flatten(3).transpose(2, 3)
        elif inputs.dim() == 4:  # (L, B, N, D) tokens
            tokens = inputs[:, :, 1:] if self.with_cls_token else inputs
            p = tokens.shape[2]
            if hw is None:
                side = math.isqrt(p)
                if side * side != p:
                    raise ValueError(
                        f'ExCELHead: {p} patch tokens are not a square grid; '
                        'pass hw=(h, w)')
                hw = (side, side)
            h, w = int(hw[0]), int(hw[1])
            if h * w != p:
                raise ValueError(f'ExCELHead: grid {h}x{w} does not match {p} '
                                 'patch tokens (class token dropped: '
                                 f'{self.with_cls_token})')
        else:
            raise ValueError('ExCELHead expects (L, B, N, D) tokens or '
                             '(L, B, D, h, w) maps, got shape '
                             f'{tuple(inputs.shape)}')
        if tokens.shape[0] != self.num_layers or \
                tokens.shape[-1] != self.in_channels:
            raise ValueError(
                f'ExCELHead configured for num_layers={self.num_layers}, '
                f'in_channels={self.in_channels} but got {tokens.shape[0]} '
                f'layers of width {tokens.shape[-1]}')
        return tokens, int(h), int(w)

    def fuse(self,
             inputs: HeadInput,
             hw: Optional[Sequence[int]] = None) -> Tensor:
        """Multi-layer fusion f (B, C, h, w) incl. Dropout2d (§6.1)."""
        tokens, h, w = self._layer_tokens(inputs, hw)
        b = tokens.shape[1]
        maps = [
            proj(tokens[j].float()).transpose(1, 2).reshape(b, -1, h, w)
            for j, proj in enumerate(self.layer_projs)
        ]
        fused = self.fuse_conv(torch.cat(maps, dim=1))
        if self.dropout is not None:
            fused = self.dropout(fused)
        return fused

    def decode(self, fused: Tensor) -> Tensor:
        """Transformer decoder + ``conv_seg``: logits (B, K, h, w) (§6.2)."""
        b, c, h, w = fused.shape
        x = fused.flatten(2).transpose(1, 2)
        for block in self.decoder_layers:
            x = block(x)
        return self.conv_seg(x.transpose(1, 2).reshape(b, c, h, w))

    def affinity(self, fused: Tensor) -> Tensor:
        """Predicted affinity Â (B, P, P) from f (§6.3)."""
        return predicted_affinity(fused, self.aff_gamma, self.aff_beta,
                                  self.aff_mean_mode)

    def forward(self,
                inputs: HeadInput,
                hw: Optional[Sequence[int]] = None) -> Dict[str, Tensor]:
        """Head forward: ``dict(seg, fused, affinity)`` (see class doc)."""
        fused = self.fuse(inputs, hw)
        return dict(
            seg=self.decode(fused), fused=fused, affinity=self.affinity(fused))

    # ------------------------------------------------------------------
    def _stack_pseudo_labels(self, batch_data_samples: SampleList) -> Tensor:
        """Stack ``data_samples[i].pseudo_sem_seg`` to (B, H, W) long."""
        missing = [
            i for i, ds in enumerate(batch_data_samples)
            if 'pseudo_sem_seg' not in ds
        ]
        if missing:
            raise KeyError('ExCELHead trains on pseudo labels: data samples '
                           f'{missing} have no pseudo_sem_seg (PixelData)')
        return torch.stack([
            ds.pseudo_sem_seg.data.reshape(ds.pseudo_sem_seg.data.shape[-2:])
            for ds in batch_data_samples
        ]).long()

    def loss(self,
             inputs: HeadInput,
             batch_data_samples: SampleList,
             train_cfg: ConfigType,
             hw: Optional[Sequence[int]] = None) -> dict:
        """Forward + :meth:`loss_by_feat` on the pseudo labels."""
        return self.loss_by_feat(self.forward(inputs, hw), batch_data_samples)

    def loss_by_feat(self,
                     seg_logits: Union[Dict[str, Tensor], Tensor],
                     batch_data_samples: Union[SampleList, Tensor],
                     aff_pred: Optional[Tensor] = None,
                     aff_target: Optional[Tensor] = None) -> dict:
        """Balanced CE (§7.1) + affinity loss (§7.2) on pseudo labels.

        Args:
            seg_logits: the :meth:`forward` dict, or the logits (B, K, h, w)
                with ``aff_pred`` given separately.
            batch_data_samples: data samples carrying ``pseudo_sem_seg``
                (never ``gt_sem_seg``), or the pseudo labels (B, H, W).
            aff_pred: Â (B, P, P) when ``seg_logits`` is a tensor.
            aff_target: optional label map (B, H, W) for the affinity labels
                (the network's own prediction after the VOC 24k switch);
                default: the pseudo labels.

        Returns:
            ``loss_seg`` (name of ``loss_decode``), ``loss_aff`` and the
            logged ``acc_seg`` (accuracy against the pseudo labels).
        """
        if isinstance(seg_logits, dict):
            aff_pred = seg_logits['affinity']
            seg_logits = seg_logits['seg']
        if aff_pred is None:
            raise ValueError('ExCELHead.loss_by_feat needs the affinity '
                             'prediction (forward dict or aff_pred)')
        if isinstance(batch_data_samples, Tensor):
            label = batch_data_samples.long()
        else:
            label = self._stack_pseudo_labels(batch_data_samples)
        if label.dim() == 4:
            label = label.squeeze(1)
        seg_up = F.interpolate(
            seg_logits,
            size=label.shape[-2:],
            mode='bilinear',
            align_corners=self.align_corners)
        losses = dict()
        loss_decode = self.loss_decode if isinstance(
            self.loss_decode, nn.ModuleList) else [self.loss_decode]
        for loss_fn in loss_decode:
            value = loss_fn(seg_up, label, ignore_index=self.ignore_index)
            losses[loss_fn.loss_name] = losses.get(loss_fn.loss_name,
                                                   0) + value
        target = label if aff_target is None else aff_target.long()
        aff_label = self.loss_aff.labels_from_mask(target,
                                                   seg_logits.shape[-2:])
        losses[self.loss_aff.loss_name] = self.loss_aff(aff_pred, aff_label)
        losses['acc_seg'] = accuracy(
            seg_up.detach(), label, ignore_index=self.ignore_index)
        return losses

    def predict(self,
                inputs: HeadInput,
                batch_img_metas: List[dict],
                test_cfg: ConfigType,
                hw: Optional[Sequence[int]] = None) -> Tensor:
        """Segmentation logits resized to the input shape (mmseg API)."""
        seg = self.forward(inputs, hw)['seg']
        return self.predict_by_feat(seg, batch_img_metas)

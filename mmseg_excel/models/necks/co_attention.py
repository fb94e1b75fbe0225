# Copyright (c) mmseg-excel contributors. All rights reserved.
"""WeakCLIP co-attention matching (docs/methods/weakclip.md §3).

Both modalities are projected to a narrow width; a text branch lets the
class queries attend to the visual tokens, a visual ("anti") branch lets the
visual tokens attend to the classes, and each branch's output is projected
back and added with a learnable per-channel scale by the segmentor
(γ for text, β for visual).

Official loop (default ``chain_layers=False``): every decoder layer gets the
*un-updated* projected input, so only the last layer's output is used and
the other layers get no gradient.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from mmseg.registry import MODELS
from torch import Tensor


class CoAttention(nn.Module):
    """Multi-head attention with separate bias-free q/k/v projections,
    scale ``1/√d_head`` and a dropout after the output projection."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'width {dim} not divisible by {num_heads} '
                             'heads')
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        b, n, c = q.shape
        m, h = k.shape[1], self.num_heads
        q = self.q_proj(q).view(b, n, h, c // h).transpose(1, 2)
        k = self.k_proj(k).view(b, m, h, c // h).transpose(1, 2)
        v = self.v_proj(v).view(b, m, h, c // h).transpose(1, 2)
        attn = ((q * (c // h)**-0.5) @ k.transpose(-2, -1)).softmax(-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class CoAttentionLayer(nn.Module):
    """Pre-norm decoder layer: self-attention, cross-attention to the other
    modality, MLP (×4, GELU, dropout)."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = CoAttention(dim, num_heads, dropout)
        self.cross_attn = CoAttention(dim, num_heads, dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.mlp = nn.Sequential(
            nn.Linear(dim, dim * 4), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(dim * 4, dim))

    def forward(self, x: Tensor, mem: Tensor) -> Tensor:
        y = self.norm1(x)
        x = x + self.self_attn(y, y, y)
        x = x + self.cross_attn(self.norm2(x), mem, mem)
        return x + self.dropout(self.mlp(self.norm3(x)))


@MODELS.register_module()
class CoAttentionMatching(BaseModule):
    """Decoupled context decoder of WeakCLIP.

    Args:
        visual_dim: joint embedding width E (text and visual embeddings).
        width: decoder width (official 256).
        num_heads: decoder heads (official 4).
        num_layers: layers per branch (official 3).
        dropout: dropout of the attention projections and the MLP (0.1).
        decouple: also build the visual branch (official True).
        chain_layers: ``False`` reproduces the official loop (every layer
            gets the un-updated input; only the last one counts);
            ``True`` chains the layers.
    """

    def __init__(self,
                 visual_dim: int,
                 width: int = 256,
                 num_heads: int = 4,
                 num_layers: int = 3,
                 dropout: float = 0.1,
                 decouple: bool = True,
                 chain_layers: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.decouple, self.chain_layers = decouple, chain_layers
        self.memory_proj = nn.Sequential(
            nn.LayerNorm(visual_dim), nn.Linear(visual_dim, width),
            nn.LayerNorm(width))
        self.text_proj = nn.Sequential(
            nn.LayerNorm(visual_dim), nn.Linear(visual_dim, width))
        self.decoder = nn.ModuleList(
            CoAttentionLayer(width, num_heads, dropout)
            for _ in range(num_layers))
        self.out_proj = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, visual_dim))
        if decouple:
            self.anti_decoder = nn.ModuleList(
                CoAttentionLayer(width, num_heads, dropout)
                for _ in range(num_layers))
            self.anti_out_proj = nn.Sequential(
                nn.LayerNorm(width), nn.Linear(width, visual_dim))
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Weights are initialised at construction (official)."""

    def _run(self, layers: nn.ModuleList, x: Tensor, mem: Tensor) -> Tensor:
        out = x
        for layer in layers:
            out = layer(out if self.chain_layers else x, mem)
        return out

    def forward(self, text: Tensor, visual: Tensor
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """``text`` (B, K, E), ``visual`` (B, N, E) → (Δt (B, K, E),
        Δv (B, N, E) or ``None`` without ``decouple``)."""
        mem = self.memory_proj(visual)
        txt = self.text_proj(text)
        text_diff = self.out_proj(self._run(self.decoder, txt, mem))
        if not self.decouple:
            return text_diff, None
        visual_diff = self.anti_out_proj(
            self._run(self.anti_decoder, mem, txt))
        return text_diff, visual_diff

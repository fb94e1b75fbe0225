# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Static Visual Calibration: the CLIP-Surgery dual path (docs/methods/excel.md
§1.5-1.6).

In the last ``num_blocks`` blocks a second, attention-only stream ``n`` runs
beside the ordinary stream ``o``. Its attention is the mean of the q·q, k·k
and v·v softmaxes, SUMMED over heads and shared by every head (official
behaviour 2); q, k,
v always come from ``LN1(o)`` (official behaviour 3); the new path has no FFN.
Works on
open_clip's ``ResidualAttentionBlock`` (``nn.MultiheadAttention``'s
``in_proj_weight``/``out_proj`` used with ``F.linear``), batch-first tensors.

``num_blocks=5`` is the official behaviour: the official call says
``layers=6`` but replaces ``resblocks[-1..-5]`` (official behaviour 1).
"""
from typing import Optional, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


def block_qkv(block: nn.Module, x: Tensor,
              ln1_out: Optional[Tensor] = None
              ) -> Tuple[Tensor, Tensor, Tensor]:
    """q, k, v (B, H, N, d) of ``LN1(x)`` for an open_clip block (x: B,N,D);
    ``ln1_out`` replaces ``LN1(x)`` (e.g. a Grad-CAM leaf)."""
    attn = block.attn
    num_heads = attn.num_heads
    b, n, d = x.shape
    a = block.ln_1(x) if ln1_out is None else ln1_out
    qkv = F.linear(a, attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.view(b, n, 3, num_heads, d // num_heads).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def out_proj(block: nn.Module, y: Tensor) -> Tensor:
    """Attention out-projection of concatenated head outputs (B, N, D)."""
    return F.linear(y, block.attn.out_proj.weight, block.attn.out_proj.bias)


def heads_out(block: nn.Module, y: Tensor) -> Tensor:
    """(B, H, N, d) per-head outputs → out-projection (B, N, D)."""
    b, h, n, d = y.shape
    return out_proj(block, y.transpose(1, 2).reshape(b, n, h * d))


def standard_block(block: nn.Module, x: Tensor,
                   qkv: Optional[Tuple[Tensor, Tensor, Tensor]] = None,
                   need_attn: bool = True,
                   drop_path: Optional[nn.Module] = None
                   ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    """Ordinary pre-LN CLIP block.

    Returns ``(x_out, x_mid, attn)``: the block output, the state after the
    attention residual (before the MLP) and the per-head attention
    (B, H, N, N). With ``need_attn=False`` the attention runs fused
    (``scaled_dot_product_attention``) and ``attn`` is ``None``.
    ``drop_path`` (stochastic depth, e.g. mmcv's ``DropPath``) is applied to
    both residual branches, as DenseCLIP-style towers do.
    """
    q, k, v = block_qkv(block, x) if qkv is None else qkv
    if need_attn:
        scale = q.shape[-1]**-0.5
        attn = ((q * scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        y = attn @ v
    else:
        attn, y = None, F.scaled_dot_product_attention(q, k, v)
    dp = drop_path if drop_path is not None else (lambda t: t)
    x_mid = x + dp(block.ls_1(heads_out(block, y)))
    x_out = x_mid + dp(block.ls_2(block.mlp(block.ln_2(x_mid))))
    return x_out, x_mid, attn


def calibrated_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Head-summed inter-correlation attention ``S`` (B, N, N) (§1.6):
    ``Σ_h (softmax(q qᵀ/√d) + softmax(k kᵀ/√d) + softmax(v vᵀ/√d)) / 3``."""
    scale = q.shape[-1]**-0.5
    s = 0
    for t in (q, k, v):
        # each softmax is reduced over heads at once: the (B, H, N, N) sums
        # and the division are done on (B, N, N) (same value, ~0.1 s less
        # per ViT-B/16 forward at batch 4, 320² on CPU)
        s = s + ((t * scale) @ t.transpose(-2, -1)).softmax(dim=-1).sum(1)
    return s / 3


def new_path_update(block: nn.Module, n: Tensor, attn: Tensor,
                    v: Tensor) -> Tensor:
    """``n + W_o·concat_h(S v_h) + b_o`` with one shared (B, N, N) ``S``;
    no LayerNorm, no FFN on the new path.

    ``S`` is shared by the heads, so ``S @ concat_h(v_h)`` gives the
    concatenated head outputs in one (B, N, N) x (B, N, D) product (no
    (B, H, N, N) broadcast copy of ``S``)."""
    b, h, n_tok, d = v.shape
    y = attn @ v.transpose(1, 2).reshape(b, n_tok, h * d)
    return n + block.ls_1(out_proj(block, y))


@MODELS.register_module()
class SVC(nn.Module):
    """Static Visual Calibration settings (no parameters).

    Args:
        num_blocks: number of last blocks given the dual path (official 5,
            although the official call says ``layers=6``; official behaviour
            1).
    """

    def __init__(self, num_blocks: int = 5) -> None:
        super().__init__()
        if num_blocks < 1:
            raise ValueError(f'SVC.num_blocks must be >= 1, got {num_blocks}')
        self.num_blocks = int(num_blocks)

    def first_block(self, num_layers: int) -> int:
        """Index of the first surgery block in a ``num_layers`` tower."""
        if self.num_blocks > num_layers:
            raise ValueError(f'SVC.num_blocks={self.num_blocks} exceeds the '
                             f'{num_layers} blocks of the CLIP ViT')
        return num_layers - self.num_blocks

    def extra_repr(self) -> str:
        return f'num_blocks={self.num_blocks}'

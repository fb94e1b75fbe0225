# Copyright (c) mmseg-excel contributors. All rights reserved.
"""CLIP text encoder with learnable context (docs/methods/weakclip.md §2).

Class names are tokenised into a short context (``[SOT] name [EOT] pad``);
the learnable context vectors, shared by all classes, are inserted right
after SOT; the positional table is truncated to the total length; the
embedding is ``ln_final`` of the EOT token times ``text_projection``.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from mmseg_excel.utils.clip_weights import load_clip


def tokenize_class_names(names: Sequence[str],
                         context_length: int) -> Tensor:
    """(K, context_length) CLIP BPE tokens ``[SOT] name [EOT] 0…``; a name
    that does not fit is an error naming it (no silent truncation)."""
    from open_clip.tokenizer import _tokenizer
    sot, eot = _tokenizer.sot_token_id, _tokenizer.eot_token_id
    out = torch.zeros(len(names), context_length, dtype=torch.long)
    for i, name in enumerate(names):
        tokens = [sot] + _tokenizer.encode(name) + [eot]
        if len(tokens) > context_length:
            raise ValueError(
                f'class name {name!r} needs {len(tokens) - 2} BPE tokens, '
                f'more than the {context_length - 2} the name context '
                f'(length {context_length}) holds: shorten it or raise '
                f'name_context_length (and the text context length)')
        out[i, :len(tokens)] = torch.tensor(tokens)
    return out


@MODELS.register_module()
class CLIPTextContextEncoder(BaseModule):
    """CLIP text tower driven by learnable context vectors.

    Args:
        model_name, pretrained, cache_dir, force_quick_gelu: the CLIP, loaded
            by the project's one resolver (every weight format).
        context_length: total text length (official 13 = 5 name tokens +
            8 learnable vectors); the positional table keeps its first
            ``context_length`` rows.
    """

    def __init__(self,
                 model_name: Optional[str] = 'ViT-B-16',
                 pretrained: Optional[str] = 'openai',
                 cache_dir: Optional[str] = None,
                 context_length: int = 13,
                 force_quick_gelu: Optional[bool] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        clip = load_clip(model_name, pretrained, cache_dir=cache_dir,
                         force_quick_gelu=force_quick_gelu)
        pos = clip.positional_embedding
        if context_length > pos.shape[0]:
            raise ValueError(f'context_length {context_length} exceeds the '
                             f"CLIP's {pos.shape[0]} text positions")
        self.context_length = context_length
        self.token_embedding = clip.token_embedding
        self.positional_embedding = nn.Parameter(
            pos.detach()[:context_length].clone())
        self.transformer = clip.transformer
        self.ln_final = clip.ln_final
        self.text_projection = clip.text_projection
        self.width = self.token_embedding.embedding_dim
        self.embed_dim = (self.text_projection.shape[1] if isinstance(
            self.text_projection, Tensor) else
            self.text_projection.out_features)
        mask = torch.full((context_length, context_length), float('-inf'))
        self.register_buffer('attn_mask', mask.triu_(1), persistent=False)
        del clip

    def init_weights(self) -> None:
        """CLIP is loaded in ``__init__``; nothing to initialise."""

    def transformer_input(self, tokens: Tensor, contexts: Tensor) -> Tensor:
        """(B·K, L, W): ``[SOT, ctx…, name tokens…] + positional``."""
        k, n1 = tokens.shape
        b, n2, c = contexts.shape
        if n1 + n2 != self.context_length:
            raise ValueError(
                f'{n1} name tokens + {n2} context vectors != text context '
                f'length {self.context_length}')
        if c != self.width:
            raise ValueError(f'context width {c} != text width {self.width}')
        x = self.token_embedding(tokens)[None].expand(b, k, n1, c)
        ctx = contexts[:, None].expand(b, k, n2, c)
        x = torch.cat([x[:, :, :1], ctx, x[:, :, 1:]], dim=2)
        return x.reshape(b * k, n1 + n2, c) + self.positional_embedding

    def forward(self, tokens: Tensor, contexts: Tensor) -> Tensor:
        """``tokens`` (K, n1) class-name tokens, ``contexts`` (B, n2, W) →
        text embeddings (B, K, E)."""
        k = tokens.shape[0]
        b, n2 = contexts.shape[:2]
        x = self.transformer_input(tokens, contexts)
        x = self.transformer(x, attn_mask=self.attn_mask.to(x.dtype))
        x = self.ln_final(x)
        eot = (tokens.argmax(dim=-1) + n2).repeat(b)
        x = x[torch.arange(x.shape[0], device=x.device), eot]
        if isinstance(self.text_projection, Tensor):
            x = x @ self.text_projection
        else:
            x = self.text_projection(x)
        return x.reshape(b, k, -1)

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Text Semantic Enrichment (TSE, docs/methods/excel.md §2.4) and the text head
that
computes the class embeddings once (``ExCELTextHead``).

TSE ("implicit attribute hunting"), reproduced exactly (official behaviours
7-8)::

    L     = T_fg · C                        raw dot products, no temperature
    r     = floor((1 - keep_ratio) · M)     (float arithmetic: 11 for M=112)
    L[c, r smallest entries of row c] = -inf
    W     = softmax_M(L)
    T_enr = W · Cᵀ + T_fg
    T̃     = row-normalise(concat[T_enr; T_bg])   background rows not enriched
"""
import math
import os.path as osp
from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule

from mmseg.registry import MODELS
from .attribute_bank import get_attribute_bank
from .clip_text import (encode_class_texts, get_clip_tokenizer,
                        load_clip_model, text_tower_fingerprint)
from .prompts import resolve_bg_names, resolve_class_names, resolve_templates

PACKAGE_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))


def num_masked_clusters(num_clusters: int, keep_ratio: float) -> int:
    """r = floor((1 - keep_ratio) · M), in float arithmetic as the official
    code (``int((1 - 0.9) * 112) = 11``, ``int((1 - 0.9) * 224) = 22``)."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f'keep_ratio must be in (0, 1], got {keep_ratio}')
    return int(math.floor((1.0 - keep_ratio) * num_clusters))


def attribute_weights(text_fg: torch.Tensor,
                      centers: torch.Tensor,
                      keep_ratio: float = 0.9) -> torch.Tensor:
    """W = softmax_M of the raw logits ``T_fg · C`` with the
    ``floor((1 - keep_ratio)·M)`` smallest of every row set to -inf; (K, M).
    """
    logits = text_fg @ centers  # (K, M) raw dot products, no temperature
    r = num_masked_clusters(centers.shape[1], keep_ratio)
    if r > 0:
        low = logits.topk(r, dim=1, largest=False).indices
        logits = logits.scatter(1, low, float('-inf'))
    return logits.softmax(dim=1)


def text_semantic_enrichment(text_fg: torch.Tensor,
                             text_bg: torch.Tensor,
                             centers: torch.Tensor,
                             keep_ratio: float = 0.9) -> torch.Tensor:
    """TSE of docs/methods/excel.md §2.4.

    Args:
        text_fg: (K_fg, E) foreground text embeddings (unit rows).
        text_bg: (K_bg, E) background text embeddings (may be empty).
        centers: (E, M) attribute-bank centres (not re-normalised).
        keep_ratio: fraction of clusters kept per class (0.9: the bottom
            ``floor(0.1·M)`` logits of every row are masked).

    Returns:
        (K_fg + K_bg, E) row-normalised ``concat[W·Cᵀ + T_fg; T_bg]``.
    """
    if text_fg.dim() != 2 or centers.dim() != 2:
        raise ValueError('text_fg must be (K, E) and centers (E, M), got '
                         f'{tuple(text_fg.shape)} and {tuple(centers.shape)}')
    if centers.shape[0] != text_fg.shape[1]:
        raise ValueError(
            f'centers have dim {centers.shape[0]} but the text embeddings '
            f'have dim {text_fg.shape[1]} (bank of another CLIP?)')
    centers = centers.to(text_fg)
    weights = attribute_weights(text_fg, centers, keep_ratio)
    enriched = weights @ centers.t() + text_fg
    out = torch.cat([enriched, text_bg.to(enriched)], dim=0)
    return out / out.norm(dim=-1, keepdim=True)


def resolve_data_path(path: str) -> str:
    """A relative path as given, else relative to the repository root."""
    if path is None or osp.isabs(path) or osp.exists(path):
        return path
    alt = osp.join(PACKAGE_ROOT, path)
    return alt if osp.exists(alt) else path


@MODELS.register_module()
class ExCELTextHead(BaseModule):
    """Class text embeddings (plain or TSE-enriched), computed once.

    The CLIP named in ``clip`` is loaded in ``__init__``, used to encode the
    prompts (and the descriptions when a bank must be built), then dropped:
    the module keeps no text tower. Embeddings live in non-persistent buffers
    (moved by ``.to()``, not saved in checkpoints).

    Args:
        clip: ``dict(model_name, pretrained, cache_dir)`` CLIP weight source.
        class_names: foreground names (list) or a set name of
            :mod:`.prompts` (``'voc_excel'``, ``'coco_excel'``, ...).
        bg_names: background names (list), a set name (``'voc'``,
            ``'coco'``) or None.
        templates: template list or set name (default ``'origami'``).
        tse: ``dict(descriptions, bank_file=None, num_clusters, keep_ratio=0.9,
            seed=0, n_init=10, cache_dir=None)`` or None (no TSE ablation).
        lowercase: lower-case the filled class prompts.

    Attributes / buffers:
        text_embeds (T, E): what ``forward()`` returns (TSE output, or the
            plain embeddings when ``tse`` is None), foreground rows first.
        plain_embeds (T, E): plain (non-TSE) embeddings (CLIP-ES).
        num_fg, num_bg: numbers of foreground / background rows.
    """

    def __init__(self,
                 clip: dict,
                 class_names: Union[str, Sequence[str]],
                 bg_names: Union[str, Sequence[str], None] = None,
                 templates: Union[str, Sequence[str], None] = None,
                 tse: Optional[dict] = None,
                 lowercase: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.class_names: List[str] = resolve_class_names(class_names)
        self.bg_names: List[str] = resolve_bg_names(bg_names)
        self.templates: List[str] = resolve_templates(templates)
        self.num_fg = len(self.class_names)
        self.num_bg = len(self.bg_names)
        clip = dict(clip)
        unknown = set(clip) - {'model_name', 'pretrained', 'cache_dir'}
        if unknown:
            raise ValueError(f'unknown keys in clip config: {sorted(unknown)}')
        model_name = clip.get('model_name')
        pretrained = clip.get('pretrained')
        clip_model = load_clip_model(model_name, pretrained,
                                     clip.get('cache_dir'))
        tokenizer = get_clip_tokenizer(model_name)
        names = self.class_names + self.bg_names
        plain = encode_class_texts(
            clip_model, tokenizer, names, self.templates, lowercase=lowercase)
        self.keep_ratio = None
        self.bank_info = None
        if tse is not None:
            tse = dict(tse)
            allowed = {
                'descriptions', 'bank_file', 'num_clusters', 'keep_ratio',
                'seed', 'n_init', 'cache_dir'
            }
            unknown = set(tse) - allowed
            if unknown:
                raise ValueError(
                    f'unknown keys in tse config: '
                    f'{sorted(unknown)} (allowed {sorted(allowed)})')
            self.keep_ratio = float(tse.get('keep_ratio', 0.9))
            bank = get_attribute_bank(
                clip_model,
                tokenizer,
                descriptions=resolve_data_path(tse.get('descriptions')),
                bank_file=resolve_data_path(tse.get('bank_file')),
                num_clusters=tse.get('num_clusters'),
                seed=int(tse.get('seed', 0)),
                n_init=int(tse.get('n_init', 10)),
                cache_dir=tse.get('cache_dir'),
                num_classes=self.num_fg,
                model_name=model_name,
                pretrained=pretrained,
                text_fingerprint=text_tower_fingerprint(clip_model))
            self.bank_info = dict(
                source=bank.source,
                num_clusters=bank.num_clusters,
                descriptions_sha256=bank.descriptions_sha256)
            embeds = text_semantic_enrichment(plain[:self.num_fg],
                                              plain[self.num_fg:],
                                              bank.centers, self.keep_ratio)
        else:
            embeds = plain
        del clip_model  # keep no text tower
        self.register_buffer('text_embeds', embeds.contiguous(), False)
        self.register_buffer('plain_embeds', plain.contiguous(), False)

    @property
    def embed_dim(self) -> int:
        """E, the joint embedding dimension."""
        return int(self.text_embeds.shape[1])

    @property
    def fg_embeds(self) -> torch.Tensor:
        """(K_fg, E) foreground rows of ``text_embeds``."""
        return self.text_embeds[:self.num_fg]

    @property
    def plain_fg_embeds(self) -> torch.Tensor:
        """(K_fg, E) plain foreground embeddings (CLIP-ES)."""
        return self.plain_embeds[:self.num_fg]

    @property
    def plain_bg_embeds(self) -> torch.Tensor:
        """(K_bg, E) plain background embeddings (CLIP-ES)."""
        return self.plain_embeds[self.num_fg:]

    def forward(self) -> torch.Tensor:
        """(T, E) class embeddings, ``num_fg`` foreground rows first."""
        return self.text_embeds

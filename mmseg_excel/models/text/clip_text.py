# Copyright (c) mmseg-excel contributors. All rights reserved.
"""CLIP text embeddings of class prompts and descriptions
(docs/methods/excel.md §2.1,
docs/methods/clip_es.md §2.1).

The order of operations is the official ``zeroshot_classifier`` of CLIP-ES
(also used by ExCEL): per name, encode every filled template, L2-normalise
each, average over the templates, L2-normalise again. Texts are tokenised
with CLIP's BPE tokenizer (context 77) and never truncated silently.
"""
import hashlib
import sys
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.utils import ProgressBar

Tokenizer = Callable[[List[str]], torch.Tensor]


def load_clip_model(model_name: Optional[str],
                    pretrained: Optional[str],
                    cache_dir: Optional[str] = None) -> nn.Module:
    """Load a CLIP in fp32, eval mode, through the project's one weight
    resolver :func:`mmseg_excel.utils.clip_weights.load_clip` (tags with
    QuickGELU for OpenAI weights, open_clip files, OpenAI state dicts with
    the architecture inferred from the shapes, TorchScript archives)."""
    from mmseg_excel.utils.clip_weights import load_clip
    return load_clip(model_name, pretrained, cache_dir=cache_dir)


def get_clip_tokenizer(model_name: Optional[str] = None,
                       context_length: int = 77) -> Tokenizer:
    """CLIP BPE tokenizer of open_clip for ``model_name`` (default: the
    OpenAI ``SimpleTokenizer``, as ``clip.tokenize``)."""
    import open_clip
    from mmseg_excel.utils.clip_weights import resolve_model_name
    model_name = resolve_model_name(model_name)
    if model_name is not None and model_name in open_clip.list_models():
        return open_clip.get_tokenizer(model_name)
    return lambda texts: open_clip.tokenize(texts, context_length)


def check_token_lengths(texts: Sequence[str],
                        context_length: int = 77) -> None:
    """Raise if a text needs more than ``context_length`` tokens (the official
    ``clip.tokenize(truncate=False)`` raises, open_clip would truncate)."""
    from open_clip.tokenizer import _tokenizer
    for text in texts:
        n = len(_tokenizer.encode(text)) + 2  # + start/end of text
        if n > context_length:
            raise ValueError(
                f'text needs {n} tokens, more than the context length '
                f'{context_length}: {text[:80]!r}...')


@torch.no_grad()
def encode_texts(clip_model: nn.Module,
                 tokenizer: Tokenizer,
                 texts: Sequence[str],
                 batch_size: int = 256,
                 normalize: bool = True,
                 progress: bool = False) -> torch.Tensor:
    """``clip_model.encode_text`` of every text, batched; ``(len(texts), E)``
    fp32, each row L2-normalised when ``normalize`` (``progress`` shows
    mmengine's progress bar with an ETA)."""
    texts = list(texts)
    if not texts:
        raise ValueError('encode_texts got no texts')
    ctx = getattr(clip_model, 'context_length', 77)
    check_token_lengths(texts, ctx)
    device = next(clip_model.parameters()).device
    out = []
    bar = ProgressBar(len(texts), file=sys.stdout) if progress else None
    for i in range(0, len(texts), batch_size):
        tokens = tokenizer(texts[i:i + batch_size]).to(device)
        feats = clip_model.encode_text(tokens).float()
        if normalize:
            feats = feats / feats.norm(dim=-1, keepdim=True)
        out.append(feats)
        if bar is not None:
            for _ in range(len(tokens)):
                bar.update()
    if bar is not None:
        sys.stdout.write('\n')
    return torch.cat(out)


@torch.no_grad()
def encode_class_texts(clip_model: nn.Module,
                       tokenizer: Tokenizer,
                       names: Sequence[str],
                       templates: Sequence[str],
                       lowercase: bool = False) -> torch.Tensor:
    """Class embeddings ``(len(names), E)`` (official ``zeroshot_classifier``).

    Per name: encode every filled template, L2-normalise each, mean over the
    templates, L2-normalise the mean. ``lowercase`` lower-cases the filled
    prompts first (the official class path does not; the names are lower
    case already).
    """
    names, templates = list(names), list(templates)
    if not names or not templates:
        raise ValueError('encode_class_texts needs names and templates')
    prompts = [t.format(n) for n in names for t in templates]
    if lowercase:
        prompts = [p.lower() for p in prompts]
    feats = encode_texts(clip_model, tokenizer, prompts, normalize=True)
    feats = feats.view(len(names), len(templates), -1).mean(dim=1)
    return feats / feats.norm(dim=-1, keepdim=True)


def text_tower_state(clip_model: nn.Module) -> Dict[str, torch.Tensor]:
    """The tensors of the text tower (every state-dict entry outside the
    vision tower and the logit scale/bias)."""
    return {
        k: v
        for k, v in clip_model.state_dict().items()
        if not k.startswith('visual.') and k not in ('logit_scale',
                                                     'logit_bias')
    }


def text_tower_fingerprint(clip_model: nn.Module) -> str:
    """sha256 over name, shape and fp32 bytes of every text-tower tensor.

    Identifies the text weights whatever the file format or the storage
    precision (fp16 weights hash like their fp32 copies).
    """
    h = hashlib.sha256()
    state = text_tower_state(clip_model)
    if not state:
        raise ValueError('CLIP model has no text-tower weights to fingerprint')
    for key in sorted(state):
        t = state[key].detach().to('cpu', torch.float32).contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()

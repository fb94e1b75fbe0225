# Copyright (c) mmseg-excel contributors. All rights reserved.
"""CLIP-ES Softmax-GradCAM (docs/methods/clip_es.md §2, §3; paper Eq. 1-4).

The frozen open_clip visual tower is used by reference (never copied): blocks
0…L−2 run without gradient, block L−1 runs with a graph whose only leaf is the
output of its ``ln_1`` (the Grad-CAM target layer). The score of class ``c_j``
is the softmax PROBABILITY over ``[image's own classes; background set]`` of
the cosine between the mean-patch image embedding (``ln_post``·``proj``, class
token unused) and the text features, times ``exp(logit_scale)``.

Batched over classes, two exact ways: 'vmap' (default) runs block L−1 once
per image and vectorises the K backward passes (``autograd.grad`` with
``is_grads_batched=True``; cotangent k selects class k of every image);
'replicate' repeats the block input once per (image, class) row and runs one
backward of ``Σ_r prob_r[target_r]`` (rows are independent, so each gets its
own gradient). Batched over images of equal size.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..backbones.clip_vit import interpolate_pos_embed
from ..necks.svc import block_qkv, standard_block

try:  # the registry needs mmseg (mmcv.ops); the maths does not
    from mmseg.registry import MODELS
except ImportError:  # pragma: no cover - exercised only without mmcv
    MODELS = None


def _register(cls):
    return MODELS.register_module()(cls) if MODELS is not None else cls


def resize_clip_pos_embed(pos_embed: Tensor,
                          grid_hw: Tuple[int, int],
                          fp16_round: bool = True) -> Tensor:
    """CLIP's (1 + g², D) positional table resized to (1 + h·w, D) (§2) by
    the shared ViT's :func:`interpolate_pos_embed` (always resampled); the
    official CLIP-ES code then stores the table as fp16 (``fp16_round``)
    even on the CPU and even when h×w = g×g.
    """
    if pos_embed.dim() != 2:
        raise ValueError('pos_embed must be (1 + g*g, D), got '
                         f'{tuple(pos_embed.shape)}')
    n = pos_embed.shape[0]
    g = int(round((n - 1)**0.5))
    if g * g != n - 1:
        raise ValueError(f'pos_embed has {n - 1} grid positions, not a square')
    out = interpolate_pos_embed(pos_embed, (g, g), grid_hw, force=True)
    if fp16_round:
        out = out.half().to(pos_embed.dtype)
    return out


def clip_block_forward(
        block: nn.Module,
        x: Tensor,
        ln1_out: Optional[Tensor] = None,
        need_weights: bool = True) -> Tuple[Tensor, Optional[Tensor]]:
    """One open_clip ``ResidualAttentionBlock`` on batch-first (B, N, D)
    through the shared block of the ViT (:func:`standard_block`), returning
    the head-averaged attention (B, N, N) as ``nn.MultiheadAttention`` gives
    it (None when ``need_weights`` is False: fused attention).
    ``ln1_out`` replaces ``ln_1(x)`` (the Grad-CAM leaf).
    """
    qkv = block_qkv(block, x, ln1_out)
    out, _, attn = standard_block(block, x, qkv=qkv, need_attn=need_weights)
    return out, None if attn is None else attn.mean(1)


def minmax_twice(cams: Tensor, eps: float = 1e-7, times: int = 2) -> Tensor:
    """``x − min; x / (max + eps)`` per map over the last two dims, ``times``
    times (the official code applies it twice; §3.2)."""
    shape = cams.shape
    flat = cams.reshape(*shape[:-2], -1)
    for _ in range(times):
        flat = flat - flat.amin(-1, keepdim=True)
        flat = flat / (flat.amax(-1, keepdim=True) + eps)
    return flat.reshape(shape)


@_register
class SoftmaxGradCAM(nn.Module):
    """CLIP-ES Softmax-GradCAM, batched over classes and images (§3).

    The module holds no weights: the open_clip ``VisionTransformer`` is
    passed to each call, so a segmentor owning CLIP keeps one copy.

    Args:
        num_attn_layers (int): how many last blocks' head-averaged attention
            maps to return and average for CAA (official: 8, incl. block L−1).
        pos_embed_fp16_round (bool): round the resized positional table to
            fp16 as the official code does (faithful default).
        eps (float): min-max denominator epsilon (official 1e-7).
        num_minmax (int): how many times the min-max is applied (official 2).
        batch_mode (str): how the per-class gradients are batched: 'vmap'
            (default: block L−1 forward once per image, the K backward passes
            vectorised with ``autograd.grad(is_grads_batched=True)``) or
            'replicate' (the block input repeated once per class, one plain
            backward). Both give each class its exact own gradient.
    """

    def __init__(self,
                 num_attn_layers: int = 8,
                 pos_embed_fp16_round: bool = True,
                 eps: float = 1e-7,
                 num_minmax: int = 2,
                 batch_mode: str = 'vmap') -> None:
        super().__init__()
        if batch_mode not in ('vmap', 'replicate'):
            raise ValueError(
                f"batch_mode must be 'vmap' or 'replicate', got {batch_mode!r}"
            )
        self.batch_mode = batch_mode
        if num_attn_layers < 1:
            raise ValueError(
                f'num_attn_layers must be >= 1, got {num_attn_layers}')
        self.num_attn_layers = num_attn_layers
        self.pos_embed_fp16_round = pos_embed_fp16_round
        self.eps = eps
        self.num_minmax = num_minmax

    # ------------------------------------------------------------------ #
    # frozen part: blocks 0 … L−2
    # ------------------------------------------------------------------ #
    @staticmethod
    def _check_visual(visual: nn.Module) -> None:
        for name in ('conv1', 'class_embedding', 'positional_embedding',
                     'ln_pre', 'transformer', 'ln_post', 'proj'):
            if not hasattr(visual, name):
                raise TypeError('SoftmaxGradCAM needs an open_clip '
                                f'VisionTransformer; missing `{name}` on '
                                f'{type(visual).__name__}')

    def embed(self, visual: nn.Module, images: Tensor) -> Tensor:
        """conv1 → class token → resized positional table → ``ln_pre``.

        Args:
            images: (B, 3, H', W') normalised, H' and W' multiples of the
                patch size.

        Returns:
            (B, N, D) tokens, N = 1 + h·w.
        """
        self._check_visual(visual)
        if images.dim() != 4:
            raise ValueError(
                f'images must be (B, 3, H, W), got {tuple(images.shape)}')
        dtype = visual.conv1.weight.dtype
        x = visual.conv1(images.to(dtype))  # (B, D, h, w)
        b, d, h, w = x.shape
        x = x.reshape(b, d, h * w).transpose(1, 2)
        cls = visual.class_embedding.to(x.dtype).view(1, 1, d).expand(b, 1, d)
        x = torch.cat([cls, x], 1)
        pos = resize_clip_pos_embed(visual.positional_embedding, (h, w),
                                    self.pos_embed_fp16_round)
        x = x + pos.to(x.dtype)
        return visual.ln_pre(x)

    @torch.no_grad()
    def frozen_forward(self, visual: nn.Module,
                       images: Tensor) -> Tuple[Tensor, List[Tensor]]:
        """Blocks 0 … L−2 without gradient (§2).

        Returns:
            tokens (B, N, D) after block L−2 and the L−1 head-averaged
            attention maps, each (B, N, N).
        """
        x = self.embed(visual, images)
        blocks = visual.transformer.resblocks
        attn = []
        for blk in blocks[:len(blocks) - 1]:
            x, w = clip_block_forward(blk, x)
            attn.append(w)
        return x, attn

    # ------------------------------------------------------------------ #
    # block L−1 with gradients, all classes at once
    # ------------------------------------------------------------------ #
    def gradcam(self,
                visual: nn.Module,
                tokens: Tensor,
                text_features: Sequence[Tensor],
                num_classes: Sequence[int],
                logit_scale: Union[float, Tensor],
                grid_hw: Tuple[int, int],
                return_intermediates: bool = False) -> Dict[str, object]:
        """Softmax-GradCAM of every present class of B equal-size images.

        Args:
            tokens: (B, N, D) tokens after block L−2 (no graph needed).
            text_features: per image (K_i + M, E): the image's K_i classes
                (label order) followed by the M background prompts.
            num_classes: K_i per image (targets are rows 0 … K_i−1).
            logit_scale: exp(logit_scale) of the CLIP (OpenAI: 100).
            grid_hw: (h, w), h·w = N − 1.
            return_intermediates: also return activations, gradients,
                cam weights and raw cams.

        Returns:
            dict with ``cams`` (list of (K_i, h, w)), ``probs`` (list of
            (K_i, K_i + M): the softmax of row j is the one whose entry j was
            the target), ``attn`` ((B, N, N) block L−1 attention) and, if
            asked, ``activations`` (list of (D, h, w)), ``gradients`` (list of
            (K_i, D, h, w)), ``cam_weights`` (list of (K_i, D)).
        """
        b, n, d = tokens.shape
        h, w = grid_hw
        if h * w != n - 1:
            raise ValueError(f'grid {h}x{w} does not match {n} tokens')
        if len(text_features) != b or len(num_classes) != b:
            raise ValueError(f'{b} images but {len(text_features)} text sets '
                             f'and {len(num_classes)} class counts')
        for i, (t, k) in enumerate(zip(text_features, num_classes)):
            if t.dim() != 2 or not 0 < k <= t.shape[0]:
                raise ValueError(
                    f'image {i}: text features {tuple(t.shape)} cannot hold '
                    f'{k} present classes (need (K + M, E), K >= 1)')
        device = tokens.device
        counts = torch.as_tensor(list(num_classes), device=device)
        img_idx = torch.repeat_interleave(
            torch.arange(b, device=device), counts)  # (R,)
        target = torch.cat(
            [torch.arange(k, device=device) for k in num_classes])  # (R,)
        # text sets of different lengths: pad, mask the padding with −inf
        lengths = [t.shape[0] for t in text_features]
        tmax = max(lengths)
        e = text_features[0].shape[1]
        txt = tokens.new_zeros(b, tmax, e)
        valid = torch.zeros(b, tmax, dtype=torch.bool, device=device)
        for i, t in enumerate(text_features):
            t = t.to(tokens.dtype)
            txt[i, :t.shape[0]] = t / t.norm(dim=-1, keepdim=True)
            valid[i, :t.shape[0]] = True

        blocks = visual.transformer.resblocks
        last = blocks[len(blocks) - 1]
        tokens = tokens.detach()
        with torch.no_grad():
            act = last.ln_1(tokens)  # (B, N, D) target-layer output
        if self.batch_mode == 'vmap':
            grads, probs, attn_w = self._grads_vmap(visual, last, tokens, act,
                                                    txt, valid, img_idx,
                                                    target, logit_scale)
        else:
            grads, probs, attn_w = self._grads_replicate(
                visual, last, tokens, act, txt, valid, img_idx, target,
                logit_scale)
            # rows → images: the first row of each image
            first = torch.as_tensor(
                [0] + torch.cumsum(counts, 0).tolist()[:-1], device=device)
            attn_w = attn_w[first]

        grads = grads[:, 1:]  # (R, P, D) patch tokens only
        a_patch = act[img_idx][:, 1:]
        weights = grads.mean(1)  # (R, D), Eq. 1 with the softmax score
        raw = F.relu(torch.einsum('rd,rpd->rp', weights, a_patch))  # Eq. 2
        cams = minmax_twice(
            raw.reshape(-1, h, w).float(), self.eps, self.num_minmax)
        starts = [0] + torch.cumsum(counts, 0).tolist()
        out: Dict[str, object] = dict(
            cams=[cams[s:t] for s, t in zip(starts[:-1], starts[1:])],
            probs=[
                probs[s:t, :lengths[i]].detach()
                for i, (s, t) in enumerate(zip(starts[:-1], starts[1:]))
            ],
            attn=attn_w)
        if return_intermediates:
            act_map = act[:, 1:].transpose(1, 2).reshape(b, d, h, w)
            g_map = grads.transpose(1, 2).reshape(-1, d, h, w)
            out.update(
                activations=list(act_map.detach()),
                gradients=[
                    g_map[s:t] for s, t in zip(starts[:-1], starts[1:])
                ],
                cam_weights=[
                    weights[s:t] for s, t in zip(starts[:-1], starts[1:])
                ],
                raw_cams=[
                    raw[s:t].reshape(-1, h, w)
                    for s, t in zip(starts[:-1], starts[1:])
                ])
        return out

    @staticmethod
    def _scores(visual: nn.Module, y: Tensor, txt: Tensor, valid: Tensor,
                logit_scale: Union[float, Tensor]) -> Tensor:
        """§3.1: softmax of ``scale · cos(mean-patch ln_post·proj, text)``;
        (R, N, D) block outputs, (R, T, E) unit text, (R, T) validity."""
        y = visual.ln_post(y)
        u = y[:, 1:].mean(1) @ visual.proj.to(y.dtype)  # class token unused
        u = u / u.norm(dim=-1, keepdim=True)
        logits = logit_scale * torch.einsum('re,rte->rt', u, txt)
        return logits.masked_fill(~valid, float('-inf')).softmax(-1)

    def _grads_vmap(self, visual, last, tokens, act, txt, valid, img_idx,
                    target, logit_scale) -> Tuple[Tensor, Tensor, Tensor]:
        """One forward of block L−1 per image; the K_max backward passes are
        vectorised (``is_grads_batched``): cotangent k selects class k of
        every image at once (images are independent rows)."""
        with torch.enable_grad():
            a = act.clone().requires_grad_(True)
            y, attn_w = clip_block_forward(last, tokens, ln1_out=a)
            probs = self._scores(visual, y, txt, valid, logit_scale)  # (B, T)
            kmax = int(target.max()) + 1
            cot = probs.new_zeros(kmax, *probs.shape)
            cot[target, img_idx, target] = 1.0
            (g, ) = torch.autograd.grad(
                probs, a, grad_outputs=cot, is_grads_batched=True)
        return g[target, img_idx], probs.detach()[img_idx], attn_w.detach()

    def _grads_replicate(self, visual, last, tokens, act, txt, valid, img_idx,
                         target, logit_scale) -> Tuple[Tensor, Tensor, Tensor]:
        """Block L−1 input replicated per (image, class) row; one backward of
        ``Σ_r prob_r[target_r]`` gives each row its own gradient."""
        with torch.enable_grad():
            a = act[img_idx].clone().requires_grad_(True)
            y, attn_w = clip_block_forward(last, tokens[img_idx], ln1_out=a)
            probs = self._scores(visual, y, txt[img_idx], valid[img_idx],
                                 logit_scale)  # (R, T)
            score = probs.gather(1, target[:, None]).sum()
            (g, ) = torch.autograd.grad(score, a)
        return g, probs.detach(), attn_w.detach()

    # ------------------------------------------------------------------ #
    # full call: list of images of any sizes
    # ------------------------------------------------------------------ #
    def attention_summary(self,
                          attn_maps: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """Last ``num_attn_layers`` maps (B, n, N, N) and their mean with the
        class-token row and column dropped (B, P, P) — what CAA uses (§5)."""
        if len(attn_maps) < self.num_attn_layers:
            raise ValueError(f'{len(attn_maps)} attention maps, '
                             f'{self.num_attn_layers} requested')
        last = torch.stack(attn_maps[-self.num_attn_layers:], 1).float()
        return last, last[:, :, 1:, 1:].mean(1)

    def forward(self,
                visual: nn.Module,
                images: Union[Tensor, Sequence[Tensor]],
                text_features: Sequence[Tensor],
                num_classes: Sequence[int],
                logit_scale: Union[float, Tensor],
                return_intermediates: bool = False) -> List[Dict[str, Tensor]]:
        """CAMs of every present class of every image (§3).

        Args:
            visual: the frozen open_clip ``VisionTransformer``.
            images: (B, 3, H', W') or a list of (3, H', W') / (1, 3, H', W')
                normalised images (sizes may differ; equal sizes are batched).
            text_features: per image (K_i + M, E) text features.
            num_classes: K_i per image.
            logit_scale: exp(logit_scale).

        Returns:
            per image a dict: ``cams`` (K_i, h, w) in [0, 1], ``probs``
            (K_i, K_i + M), ``attn_last`` (n, N, N) head-averaged maps of the
            last ``num_attn_layers`` blocks (block L−1 included),
            ``attn_mean`` (P, P) and ``grid_hw``; with
            ``return_intermediates`` also ``tokens`` (N, D) and the GradCAM
            intermediates.
        """
        self._check_visual(visual)
        if isinstance(images, Tensor):
            images = list(images)
        images = [im[0] if im.dim() == 4 else im for im in images]
        if not len(images) == len(text_features) == len(num_classes):
            raise ValueError(f'{len(images)} images, {len(text_features)} '
                             f'text sets, {len(num_classes)} class counts')
        patch = visual.conv1.stride
        groups: Dict[Tuple[int, int], List[int]] = {}
        for i, im in enumerate(images):
            hh, ww = im.shape[-2:]
            if hh % patch[0] or ww % patch[1]:
                raise ValueError(f'image {i} size {hh}x{ww} is not a multiple '
                                 f'of the patch size {tuple(patch)}')
            groups.setdefault((hh, ww), []).append(i)
        results: List[Optional[Dict[str, Tensor]]] = [None] * len(images)
        for (hh, ww), idx in groups.items():
            grid = (hh // patch[0], ww // patch[1])
            tokens, attn = self.frozen_forward(
                visual, torch.stack([images[i] for i in idx]))
            g = self.gradcam(visual, tokens, [text_features[i] for i in idx],
                             [num_classes[i] for i in idx], logit_scale, grid,
                             return_intermediates)
            attn_last, attn_mean = self.attention_summary(attn + [g['attn']])
            for j, i in enumerate(idx):
                r = dict(
                    cams=g['cams'][j],
                    probs=g['probs'][j],
                    attn_last=attn_last[j],
                    attn_mean=attn_mean[j],
                    grid_hw=grid)
                if return_intermediates:
                    r['tokens'] = tokens[j]
                    for k in ('activations', 'gradients', 'cam_weights',
                              'raw_cams'):
                        r[k] = g[k][j]
                results[i] = r
        return results

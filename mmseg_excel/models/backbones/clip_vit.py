# Copyright (c) mmseg-excel contributors. All rights reserved.
"""The project's one CLIP ViT image tower (docs/methods/excel.md §1, §4;
docs/methods/weakclip.md §1).

Only the visual tower of an open_clip ``CLIP`` is kept, its modules reused by
reference. For ExCEL / CLIP-ES the encoder is frozen, always in eval mode,
runs under ``no_grad`` and is stateless (the positional embedding is
interpolated at run time from the original grid, never overwritten; official
behaviour 18), with the SVC surgery path and LVC. For WeakCLIP the same
tower is built with ``frozen=False`` and ``out_indices``: multi-level outputs,
stochastic depth, the DenseCLIP class-token behaviour and a load-time resized
positional table (:meth:`CLIPViTBackbone.forward_levels`).
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from mmseg_excel.utils.clip_weights import load_clip
from ..necks.lvc import add_lvc_shift, lvc_shift
from ..necks.svc import (block_qkv, calibrated_attention, new_path_update,
                         standard_block)

_CLIP_PARTS = ('conv1', 'class_embedding', 'positional_embedding', 'ln_pre',
               'resblocks', 'ln_post', 'proj')


class SVCCache(NamedTuple):
    """What the LVC re-forward needs from the first pass (no grad).

    ``x_in``: (B, N, D) input of the first surgery block; ``attn``: per
    surgery block the static head-summed calibrated attention (B, N, N);
    ``values``: per surgery block v (B, H, N, d); ``cls_token``: (B, D) final
    class token of the original path.
    """
    x_in: Tensor
    attn: List[Tensor]
    values: List[Tensor]
    cls_token: Tensor


class CLIPFeatures(NamedTuple):
    """Encoder outputs (§1.7).

    ``image_features`` (B, N, E); ``attn_weights`` (L, B, N, N) (head-mean
    in standard blocks, head-SUM in surgery blocks, official behaviour 5);
    ``all_feats``
    (L, B, N, D) per-block tokens before ``ln_post`` (official aliasing of
    official behaviour 6 unless ``clean_layer_feats``); ``hw`` the patch grid;
    ``cache`` the SVC cache for :meth:`CLIPViTBackbone.forward_lvc`
    (``None`` without SVC).
    """
    image_features: Tensor
    attn_weights: Tensor
    all_feats: Tensor
    hw: Tuple[int, int]
    cache: Optional[SVCCache] = None


class CLIPLevels(NamedTuple):
    """Multi-level outputs (docs/methods/weakclip.md §1).

    ``features``: per ``out_indices`` block its output tokens without the
    class token as (B, D, h, w); ``global_embedding`` (B, E) and
    ``dense_embedding`` (B, E, h, w): ``ln_post · proj`` of the last block's
    class token and patch tokens (no normalisation).
    """
    features: List[Tensor]
    global_embedding: Tensor
    dense_embedding: Tensor


def interpolate_pos_embed(pos: Tensor, grid: Tuple[int, int],
                          hw: Tuple[int, int], force: bool = False) -> Tensor:
    """Resize the (1 + gh·gw, D) positional embedding to (1 + h·w, D):
    bilinear, ``align_corners=False``, no antialias; class row kept (§1.3).
    Same size: returned as is unless ``force``."""
    if tuple(hw) == tuple(grid) and not force:
        return pos
    gh, gw = grid
    cls_pos, patch_pos = pos[:1], pos[1:]
    patch_pos = patch_pos.reshape(1, gh, gw, -1).permute(0, 3, 1, 2)
    patch_pos = F.interpolate(
        patch_pos, size=tuple(hw), mode='bilinear', align_corners=False,
        antialias=False)
    patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(hw[0] * hw[1], -1)
    return torch.cat([cls_pos, patch_pos], dim=0)


@MODELS.register_module()
class CLIPViTBackbone(BaseModule):
    """Frozen open_clip ViT with Static / Learnable Visual Calibration.

    Args:
        model_name: open_clip architecture (``'ViT-B-16'``) or ``None`` for
            an OpenAI-layout state dict (see ``utils.clip_weights``).
        pretrained: weight source for :func:`load_clip` (tag or file).
        cache_dir: download folder for tags.
        svc: ``dict(type='SVC', num_blocks=5)`` or ``None`` (plain CLIP).
        clean_layer_feats: ``False`` reproduces the official aliasing of the
            stored per-layer features (official behaviour 6); ``True`` stores
            the output of
            each block of the original path.
        feature_norm: normalisation of ``image_features``: ``'token'`` (L2
            along the token axis, official behaviour 4; official),
            ``'channel'`` (each token
            over its channels) or ``'none'``. Used with and without SVC.
        lvc_beta, lvc_gamma, lvc_per_image_mean: :func:`lvc_shift` options.
        save_clip_weights: keep the frozen CLIP weights in ``state_dict``.
        force_quick_gelu: passed to the resolver.
        frozen: ``True`` (ExCEL, CLIP-ES): no gradients, always eval, CLIP
            weights kept out of checkpoints unless ``save_clip_weights``.
            ``False`` (WeakCLIP): the tower is an ordinary trainable module
            (its lr comes from the optimiser config) and its weights are
            saved.
        out_indices: blocks whose outputs :meth:`forward_levels` returns
            (WeakCLIP ``(3, 5, 7, 11)``); with it ``forward`` returns
            :class:`CLIPLevels`.
        drop_path_rate: stochastic depth, linear from 0 (block 0) to this
            value (last block), active in training mode (WeakCLIP 0.1).
        class_token_twice: DenseCLIP behaviour: the class position also gets
            ``class_embedding`` added, so the class token enters the blocks
            as ``2·class_embedding + pos[0]`` (WeakCLIP: True).
        pos_embed_grid: resize the pretrained positional grid once at load
            time to this (h, w) grid (WeakCLIP: crop / patch); forwards then
            resize from it. ``None`` keeps the pretrained grid.
        attn_layers: compute only what is read: the attention weights of
            the last ``attn_layers`` blocks are kept in
            ``CLIPFeatures.attn_weights`` (the maps CAA averages); the other
            blocks run fused attention (``scaled_dot_product_attention``,
            no (N, N) weights). ``None``: every block (the ExCEL segmentor
            sets it from its affinity's ``num_layers``).
    """

    def __init__(self,
                 model_name: Optional[str] = 'ViT-B-16',
                 pretrained: Optional[str] = 'openai',
                 cache_dir: Optional[str] = None,
                 svc: Optional[dict] = dict(type='SVC', num_blocks=5),
                 clean_layer_feats: bool = False,
                 feature_norm: str = 'token',
                 lvc_beta: float = 1.0,
                 lvc_gamma: float = 3.0,
                 lvc_per_image_mean: bool = False,
                 save_clip_weights: bool = False,
                 force_quick_gelu: Optional[bool] = None,
                 frozen: bool = True,
                 out_indices: Optional[Sequence[int]] = None,
                 drop_path_rate: float = 0.0,
                 class_token_twice: bool = False,
                 pos_embed_grid: Optional[Union[int, Sequence[int]]] = None,
                 drop_remainder: bool = False,
                 attn_layers: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if attn_layers is not None and attn_layers < 0:
            raise ValueError(f'attn_layers must be >= 0 or None, got '
                             f'{attn_layers}')
        self.attn_layers = attn_layers
        if feature_norm not in ('token', 'channel', 'none'):
            raise ValueError("feature_norm must be 'token', 'channel' or "
                             f"'none', got {feature_norm!r}")
        clip = load_clip(
            model_name, pretrained, cache_dir=cache_dir,
            force_quick_gelu=force_quick_gelu)
        visual = clip.visual
        if not hasattr(visual, 'conv1') or not hasattr(visual, 'transformer'):
            raise TypeError(f'{type(visual).__name__} is not a CLIP ViT')
        # modules / parameters by reference; the text tower is dropped
        self.conv1 = visual.conv1
        self.class_embedding = visual.class_embedding
        self.positional_embedding = visual.positional_embedding
        self.ln_pre = visual.ln_pre
        self.resblocks = visual.transformer.resblocks
        self.ln_post = visual.ln_post
        self.proj = visual.proj
        self.patch_size = tuple(visual.patch_size) if isinstance(
            visual.patch_size, (tuple, list)) else (visual.patch_size, ) * 2
        self.grid_size = tuple(visual.grid_size)
        self.num_layers = len(self.resblocks)
        self.num_heads = self.resblocks[0].attn.num_heads
        self.svc = MODELS.build(svc) if svc is not None else None
        self.surgery_start = (
            self.svc.first_block(self.num_layers)
            if self.svc is not None else self.num_layers)
        self.clean_layer_feats = clean_layer_feats
        self.feature_norm = feature_norm
        self.lvc_beta = lvc_beta
        self.lvc_gamma = lvc_gamma
        self.lvc_per_image_mean = lvc_per_image_mean
        self.frozen = frozen
        self.save_clip_weights = save_clip_weights or not frozen
        self.class_token_twice = class_token_twice
        self.drop_remainder = drop_remainder
        if out_indices is not None:
            out_indices = [int(i) for i in out_indices]
            bad = [i for i in out_indices if not 0 <= i < self.num_layers]
            if bad:
                raise ValueError(f'out_indices {bad} outside the '
                                 f'{self.num_layers} blocks of the CLIP ViT')
        self.out_indices = out_indices
        if drop_path_rate > 0:
            from mmcv.cnn.bricks import DropPath
            rates = torch.linspace(0, drop_path_rate, self.num_layers)
            self.drop_paths = nn.ModuleList(
                DropPath(float(r)) if r > 0 else nn.Identity()
                for r in rates)
        else:
            self.drop_paths = None
        if pos_embed_grid is not None:
            grid = ((pos_embed_grid, ) * 2 if isinstance(pos_embed_grid, int)
                    else tuple(int(g) for g in pos_embed_grid))
            resized = interpolate_pos_embed(
                self.positional_embedding.detach(), self.grid_size, grid,
                force=True)
            self.positional_embedding = nn.Parameter(resized.clone())
            self.grid_size = grid
        del clip
        if frozen:
            self.requires_grad_(False)
            self.eval()
        self._register_state_dict_hook(self._drop_clip_keys)

    # ------------------------------------------------------------------
    # frozen, stateless, CLIP weights kept out of our checkpoints
    def init_weights(self) -> None:
        """CLIP is loaded in ``__init__``; nothing to initialise."""

    def train(self, mode: bool = True) -> 'CLIPViTBackbone':
        """Always eval when frozen; otherwise an ordinary module."""
        return super().train(mode and not self.frozen)

    def _is_clip_key(self, key: str, prefix: str) -> bool:
        rest = key[len(prefix):] if key.startswith(prefix) else None
        return rest is not None and rest.split('.')[0] in _CLIP_PARTS

    @staticmethod
    def _drop_clip_keys(module: 'CLIPViTBackbone', state_dict: dict,
                        prefix: str, local_metadata: dict) -> dict:
        if not module.save_clip_weights:
            for key in [k for k in state_dict
                        if module._is_clip_key(k, prefix)]:
                del state_dict[key]
        return state_dict

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        """Checkpoints without CLIP keys load: the missing frozen CLIP entries
        are filled with the current (pretrained) values."""
        for name, tensor in self._clip_state(prefix).items():
            state_dict.setdefault(name, tensor)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _clip_state(self, prefix: str) -> dict:
        out = {}
        for part in _CLIP_PARTS:
            obj = getattr(self, part)
            if isinstance(obj, nn.Module):
                for k, v in obj.state_dict().items():
                    out[f'{prefix}{part}.{k}'] = v
            else:
                out[f'{prefix}{part}'] = obj.detach()
        return out

    # ------------------------------------------------------------------
    def _grid(self, img: Tensor) -> Tuple[int, int]:
        if img.dim() != 4 or img.shape[1] != 3:
            raise ValueError('CLIPViTBackbone expects (B, 3, H, W) normalised '
                             f'images, got {tuple(img.shape)}')
        (H, W), (ph, pw) = img.shape[-2:], self.patch_size
        if H < ph or W < pw:
            raise ValueError(f'image {H}x{W} is smaller than one {ph}x{pw} '
                             'patch')
        if (H % ph or W % pw) and not self.drop_remainder:
            raise ValueError(
                f'image size {H}x{W} is not divisible by the patch size '
                f'{ph}x{pw}: pad or resize in the data pipeline '
                '(e.g. size_divisor of the data preprocessor)')
        return H // ph, W // pw

    def embed(self, img: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Patch tokens + class token + positional embedding, ``ln_pre``."""
        hw = self._grid(img)
        x = self.conv1(img.to(self.conv1.weight.dtype))
        x = x.flatten(2).transpose(1, 2)  # (B, P, D)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        pos = interpolate_pos_embed(self.positional_embedding,
                                    self.grid_size, hw).to(x.dtype)
        if self.class_token_twice:  # DenseCLIP: pos[0] + class_embedding
            pos = torch.cat([pos[:1] + self.class_embedding.to(x.dtype),
                             pos[1:]], dim=0)
        return self.ln_pre(x + pos), hw

    def project(self, x: Tensor) -> Tensor:
        """``ln_post · proj`` then the configured normalisation."""
        x = self.ln_post(x)
        if self.proj is not None:
            x = x @ self.proj
        if self.feature_norm == 'token':
            x = x / x.norm(dim=1, keepdim=True)
        elif self.feature_norm == 'channel':
            x = x / x.norm(dim=-1, keepdim=True)
        return x

    def forward(self, img: Tensor, ex_feats: Optional[Tensor] = None
                ) -> Union[CLIPFeatures, CLIPLevels]:
        """Frozen CLIP (+SVC) forward; with ``ex_feats`` the LVC features.
        With ``out_indices``: :meth:`forward_levels`."""
        if self.out_indices is not None:
            return self.forward_levels(img)
        with torch.no_grad():
            x, hw = self.embed(img)
            out = self.forward_tokens(x, hw)
            if ex_feats is not None:
                return self.forward_lvc(out, ex_feats)
            return out

    def forward_levels(self, img: Tensor,
                       tokens: Optional[Tensor] = None,
                       hw: Optional[Tuple[int, int]] = None) -> CLIPLevels:
        """Multi-level forward (docs/methods/weakclip.md §1): every block,
        fused attention (no attention weights), stochastic depth in training
        mode, gradients unless frozen. ``tokens`` (the ``embed`` output) and
        ``hw`` skip the embedding (stage-wise tests)."""
        if self.out_indices is None:
            raise ValueError('forward_levels needs out_indices')
        with torch.set_grad_enabled(torch.is_grad_enabled()
                                    and not self.frozen):
            if tokens is None:
                tokens, hw = self.embed(img)
            x = tokens
            b = x.shape[0]
            feats = []
            for i, block in enumerate(self.resblocks):
                dp = self.drop_paths[i] if self.drop_paths is not None \
                    else None
                x, _, _ = standard_block(block, x, need_attn=False,
                                         drop_path=dp)
                if i in self.out_indices:
                    feats.append(x[:, 1:].transpose(1, 2).reshape(
                        b, -1, *hw).contiguous())
            x = self.ln_post(x)
            if self.proj is not None:
                x = x @ self.proj
            dense = x[:, 1:].transpose(1, 2).reshape(b, -1, *hw)
            return CLIPLevels(feats, x[:, 0], dense)

    @torch.no_grad()
    def forward_tokens(self, x: Tensor, hw: Tuple[int, int],
                       first_block: int = 0) -> CLIPFeatures:
        """Run blocks ``first_block …`` on the token stream ``x`` (B, N, D)
        (the input of block ``first_block``); ``attn_weights`` and
        ``all_feats`` then hold only those blocks. Used by :meth:`forward`
        (``first_block=0``) and by stage-wise parity tests."""
        start = self.surgery_start
        if not 0 <= first_block <= start:
            raise ValueError(f'first_block must be in [0, {start}], got '
                             f'{first_block}')
        num = len(self.resblocks)
        keep_from = 0 if self.attn_layers is None else num - self.attn_layers
        attn_list, feats = [], []
        for i, block in enumerate(self.resblocks[first_block:start],
                                  first_block):
            x, _, attn = standard_block(block, x, need_attn=i >= keep_from)
            if attn is not None:
                attn_list.append(attn.mean(dim=1))
            feats.append(x)
        cache = None
        if self.svc is None:
            image_features = self.project(x)
        else:
            x_in = x
            o, n = x, x
            mids, outs, s_list, v_list = [], [], [], []
            for i, block in enumerate(self.resblocks[start:], start):
                q, k, v = block_qkv(block, o)
                s = calibrated_attention(q, k, v)
                n = new_path_update(block, n, s, v)
                o, o_mid, attn = standard_block(block, o, (q, k, v),
                                                need_attn=i >= keep_from)
                if attn is not None:
                    attn_list.append(attn.sum(dim=1))
                mids.append(o_mid)
                outs.append(o)
                s_list.append(s)
                v_list.append(v)
            n = torch.cat([o[:, :1], n[:, 1:]], dim=1)
            image_features = self.project(n)
            cache = SVCCache(x_in, s_list, v_list, o[:, 0])
            if self.clean_layer_feats:
                feats.extend(outs)
            else:
                # official aliasing (official behaviour 6): the output of the
                # block before
                # the surgery holds the final new path; each surgery block's
                # output holds the next block's pre-MLP state; the last is
                # correct.
                if start > first_block:
                    feats[start - 1 - first_block] = n
                feats.extend(mids[1:] + outs[-1:])
        b, n_tok = x.shape[:2]
        attn_w = torch.stack(attn_list) if attn_list else x.new_zeros(
            0, b, n_tok, n_tok)
        return CLIPFeatures(image_features, attn_w, torch.stack(feats), hw,
                            cache)

    @torch.no_grad()
    def forward_lvc(self, feats: CLIPFeatures,
                    ex_feats: Tensor) -> CLIPFeatures:
        """Re-run only the new path of the surgery blocks with the LVC shift
        (§4), from the cache of :meth:`forward`. The original path, the
        attention weights and the layer features do not change; only
        ``image_features`` does."""
        cache = feats.cache if isinstance(feats, CLIPFeatures) else feats
        if cache is None:
            raise ValueError('forward_lvc needs the SVC cache: build the '
                             'backbone with svc=dict(type="SVC", ...)')
        h, w = feats.hw if isinstance(feats, CLIPFeatures) else (None, None)
        if h is not None and tuple(ex_feats.shape[-2:]) != (h, w):
            raise ValueError(f'ex_feats grid {tuple(ex_feats.shape[-2:])} '
                             f'differs from the CLIP patch grid {(h, w)}')
        shift = lvc_shift(
            ex_feats.detach(), self.lvc_beta, self.lvc_gamma,
            self.lvc_per_image_mean).to(cache.x_in.dtype)
        n = cache.x_in
        for block, s, v in zip(self.resblocks[self.surgery_start:],
                               cache.attn, cache.values):
            n = new_path_update(block, n,
                                add_lvc_shift(s, shift, self.num_heads), v)
        n = torch.cat([cache.cls_token[:, None], n[:, 1:]], dim=1)
        image_features = self.project(n)
        if isinstance(feats, CLIPFeatures):
            return feats._replace(image_features=image_features)
        return image_features

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""WeakCLIP: adapted CLIP refining another method's pseudo masks
(Zhu et al., IJCV 2025; docs/methods/weakclip.md).

The data flow of one training step reads top to bottom in
:meth:`WeakCLIP.extract_feat` and :meth:`WeakCLIP.loss`::

    image ──CLIP ViT (class token twice, drop-path; §1)──► 4 levels,
                                            global g, dense V (B, E, h, w)
    4 levels ──pyramid adapter (§1)──► ×4 / ×2 / ×1 / ÷2 pyramid
    class names + learnable context ──CLIP text (§2)──► T (B, K, E)
    [g; V], T ──co-attention matching (§3)──► T + γΔt, V + βΔv
    cos(V, T) ──► score map S (B, K, h, w)
    pyramid ⊕ S (every level) ──mmseg FPN + FPNHead (§5)──► logits (stride 4)
    logits vs pseudo mask ──seeding + CRF boundary losses (§4)──► loss
    S / τ vs pseudo mask ──identity CE (§4)──► loss

Inference (whole / slide, TTA by mmseg's ``SegTTAModel`` averaging softmax
probabilities) is mmseg's ``EncoderDecoder``; only ``encode_decode`` is
WeakCLIP's.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from ..losses.seed_boundary_loss import crf_images_uint8
from ..text.context_prompts import tokenize_class_names


@MODELS.register_module()
class WeakCLIP(EncoderDecoder):
    """WeakCLIP segmentor.

    Args:
        backbone: ``CLIPViTBackbone`` with ``frozen=False``, ``out_indices``,
            ``class_token_twice=True``, ``drop_path_rate``,
            ``pos_embed_grid`` (crop / patch) and ``drop_remainder=True``.
        adapter: ``PyramidAdapter`` (``in_channels=None``: the CLIP width).
        text_encoder: ``CLIPTextContextEncoder`` (same CLIP).
        context_decoder: ``CoAttentionMatching`` (``visual_dim=None``: the
            joint embedding width).
        neck: mmseg ``FPN``; ``in_channels=None`` gives ``[D + K] * 4``.
        decode_head: mmseg ``FPNHead`` (its ``loss_decode`` is unused).
        class_names: the dataset's classes, ``background`` first.
        name_context_length: tokens of a tokenised class name incl. SOT/EOT
            (official 5); the learnable context has
            ``text_encoder.context_length − name_context_length`` vectors.
        gamma_init, beta_init: initial γ / β (0.1).
        tau: identity-head temperature (0.07).
        seg_loss: ``SeedingBoundaryLoss`` on the decode-head logits.
        identity_loss: CE on ``S / τ`` (official weight 0.4, averaged over
            all pixels including ignored ones: ``avg_non_ignore=False``).
        loss_size: (h, w) resolution of the seeding / boundary losses
            (official crop / 8).
        norm_eval: put ``nn.BatchNorm2d`` modules in eval mode with frozen
            affine parameters while training. The official config sets it but
            every norm there is a SyncBN, which it does not touch, so the
            faithful default is ``False``.
    """

    def __init__(self,
                 backbone: ConfigType,
                 adapter: ConfigType,
                 text_encoder: ConfigType,
                 context_decoder: ConfigType,
                 neck: ConfigType,
                 decode_head: ConfigType,
                 class_names: Sequence[str],
                 name_context_length: int = 5,
                 gamma_init: float = 0.1,
                 beta_init: float = 0.1,
                 tau: float = 0.07,
                 seg_loss: ConfigType = dict(type='SeedingBoundaryLoss'),
                 identity_loss: ConfigType = dict(
                     type='mmseg.CrossEntropyLoss', loss_weight=0.4,
                     avg_non_ignore=False),
                 loss_size: Sequence[int] = (64, 64),
                 norm_eval: bool = False,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        from mmengine.config import ConfigDict
        if isinstance(test_cfg, dict):
            test_cfg = ConfigDict(test_cfg)
        super().__init__(
            backbone=backbone, decode_head=decode_head, neck=None,
            train_cfg=train_cfg, test_cfg=test_cfg,
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        # widths left as None follow the loaded CLIP and the class count
        width = self.backbone.conv1.out_channels
        adapter = dict(adapter)
        if adapter.get('in_channels') is None:
            adapter['in_channels'] = width
        self.adapter = MODELS.build(adapter)
        neck = dict(neck)
        if neck.get('in_channels') is None:
            neck['in_channels'] = [width + self.num_classes] * len(
                self.adapter.levels)
        self.neck = MODELS.build(neck)
        self.class_names = list(class_names)
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f'{len(self.class_names)} class names but the decode head '
                f'has num_classes={self.num_classes}')
        self.text_encoder = MODELS.build(text_encoder)
        context_decoder = dict(context_decoder)
        if context_decoder.get('visual_dim') is None:
            context_decoder['visual_dim'] = self.text_encoder.embed_dim
        self.context_decoder = MODELS.build(context_decoder)
        self.register_buffer(
            'name_tokens',
            tokenize_class_names(self.class_names, name_context_length),
            persistent=False)
        n_ctx = self.text_encoder.context_length - name_context_length
        if n_ctx < 1:
            raise ValueError(
                f'text context length {self.text_encoder.context_length} '
                f'leaves no learnable context after {name_context_length} '
                'name tokens')
        # sized by the text width (the official code uses the joint width,
        # which only works when both are equal)
        self.contexts = nn.Parameter(
            torch.empty(1, n_ctx, self.text_encoder.width))
        nn.init.trunc_normal_(self.contexts)  # std 1, cut at ±2
        embed = self.text_encoder.embed_dim
        self.gamma = nn.Parameter(torch.full((embed, ), float(gamma_init)))
        self.beta = nn.Parameter(torch.full((embed, ), float(beta_init)))
        self.tau = tau
        self.seg_loss = MODELS.build(seg_loss)
        self.identity_loss = MODELS.build(identity_loss)
        self.loss_size = tuple(loss_size)
        self.norm_eval = norm_eval

    # ------------------------------------------------------------------
    def text_embeddings(self, batch_size: int) -> Tensor:
        """Class text embeddings with the learnable context (B, K, E)."""
        t = self.text_encoder(self.name_tokens, self.contexts)
        return t.expand(batch_size, -1, -1)

    def match(self, global_emb: Tensor, dense: Tensor, text: Tensor
              ) -> Tuple[Tensor, Tensor, Tensor]:
        """Co-attention matching and the score map (§3):
        returns (updated dense V (B, E, h, w), updated T, S (B, K, h, w))."""
        b, e, h, w = dense.shape
        visual = torch.cat([global_emb[:, None], dense.flatten(2).transpose(
            1, 2)], dim=1)
        text_diff, visual_diff = self.context_decoder(text, visual)
        if visual_diff is not None:
            visual = visual + self.beta * visual_diff
            dense = visual[:, 1:].transpose(1, 2).reshape(b, e, h, w)
        text = text + self.gamma * text_diff
        score = torch.einsum('bchw,bkc->bkhw', F.normalize(dense, dim=1),
                             F.normalize(text, dim=2))
        return dense, text, score

    def extract_feat(self, inputs: Tensor) -> Tuple[List[Tensor], Tensor]:
        """Neck outputs (the decode head's inputs) and the score map S."""
        levels = self.backbone(inputs)
        pyramid = self.adapter(levels.features)
        text = self.text_embeddings(inputs.shape[0])
        _, _, score = self.match(levels.global_embedding,
                                 levels.dense_embedding, text)
        x = [
            torch.cat([p, F.interpolate(score, size=p.shape[-2:],
                                        mode='bilinear', align_corners=True)],
                      dim=1) for p in pyramid
        ]
        return list(self.neck(x)), score

    def _forward(self, inputs: Tensor, data_samples=None) -> Tensor:
        """Stride-4 logits (mmseg's tensor mode)."""
        x, _ = self.extract_feat(inputs)
        return self.decode_head.forward(x)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Logits resized (bilinear) to the input size."""
        x, _ = self.extract_feat(inputs)
        logits = self.decode_head(x)
        return F.interpolate(logits, size=inputs.shape[-2:], mode='bilinear',
                             align_corners=self.align_corners)

    def _mean_std(self) -> Tuple[List[float], List[float]]:
        dp = self.data_preprocessor
        if getattr(dp, 'mean', None) is None:
            raise ValueError('WeakCLIP needs a data preprocessor with mean/'
                             'std (the CRF de-normalises the inputs)')
        return dp.mean.view(-1).tolist(), dp.std.view(-1).tolist()

    def seg_losses(self, logits: Tensor, mask: Tensor,
                   inputs: Tensor) -> dict:
        """Seeding + boundary losses of the stride-4 ``logits``."""
        h, w = self.loss_size
        z = F.interpolate(logits.float(), size=(h, w), mode='bilinear',
                          align_corners=bool(h % 2 and w % 2))
        mean, std = self._mean_std()
        images = crf_images_uint8(inputs, (h, w), mean, std)
        return self.seg_loss(z, mask, images)

    def identity_losses(self, score: Tensor, mask: Tensor) -> dict:
        """Identity head: CE of ``S / τ`` resized to the mask."""
        from mmseg.models.utils import resize
        logit = resize(score / self.tau, size=mask.shape[-2:],
                       mode='bilinear', align_corners=False)
        target = mask[:, 0].long()
        with torch.no_grad():  # % of ALL pixels (mmseg 0.x, as logged)
            hit = (logit.argmax(1) == target) & (target != 255)
            acc = hit.sum().float() * (100.0 / target.numel())
        return dict(
            loss_ce=self.identity_loss(logit, target, ignore_index=255),
            acc_seg=acc)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Training losses from images and their pseudo masks."""
        mask = torch.stack([s.gt_sem_seg.data for s in data_samples])
        x, score = self.extract_feat(inputs)
        logits = self.decode_head(x)
        losses = {}
        for k, v in self.seg_losses(logits, mask, inputs).items():
            losses[f'decode.{k}'] = v
        for k, v in self.identity_losses(score, mask).items():
            losses[f'aux_identity.{k}'] = v
        return losses

    @torch.no_grad()
    def generate_pseudo_labels(self, inputs: Tensor,
                               data_samples: SampleList) -> dict:
        """Refined pseudo masks (docs/methods/weakclip.md §5): per image the
        softmax probabilities averaged over the scales
        ``test_cfg.aug_ratios`` (default ``[1.0]``) and, with
        ``test_cfg.aug_flip`` (default True), their mirrors, each view through
        :meth:`inference` (whole / slide) and resized to the original size.

        Returns (lists over images) ``cams_with_bkg``: the probabilities of
        the classes present in the argmax, ``keys``: their ids,
        ``pseudo_labels``: the argmax, all at the original size — what
        ``tools/generate_pseudo_labels.py --crf`` refines with the config's
        dense CRF. The scales are applied to the normalised tensor
        (bilinear), not to the uint8 image as the official test pipeline
        does.
        """
        ratios = list(self.test_cfg.get('aug_ratios', [1.0]))
        flips = [False, True] if self.test_cfg.get('aug_flip', True) \
            else [False]
        probs_l, keys_l, labels_l = [], [], []
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            h, w = meta.get('img_shape', inputs.shape[-2:])[:2]
            ori = tuple(meta.get('ori_shape', (h, w))[:2])
            x = inputs[i:i + 1, :, :h, :w]
            total = 0
            for r in ratios:
                xr = x if r == 1 else F.interpolate(
                    x, scale_factor=r, mode='bilinear', align_corners=False)
                for flip in flips:
                    v = xr.flip(-1) if flip else xr
                    logit = self.inference(
                        v, [dict(meta, img_shape=tuple(v.shape[-2:]))])
                    p = F.interpolate(logit, size=ori, mode='bilinear',
                                      align_corners=False).softmax(1)
                    total = total + (p.flip(-1) if flip else p)
            probs = (total / (len(ratios) * len(flips)))[0]
            label = probs.argmax(0)
            keys = torch.unique(label)
            probs_l.append(probs[keys])
            keys_l.append(keys)
            labels_l.append(label)
        return dict(cams_with_bkg=probs_l, keys=keys_l,
                    pseudo_labels=labels_l, labels_are_original=True)

    def train(self, mode: bool = True) -> 'WeakCLIP':
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if type(m) is nn.BatchNorm2d:
                    m.eval()
                    m.requires_grad_(False)
        return self

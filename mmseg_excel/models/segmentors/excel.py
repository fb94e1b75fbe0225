# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCEL single-stage WSSS segmentor (Yang et al., CVPR 2025).

The data flow of one training step (EXCEL.md §8.3) reads top to bottom in
:meth:`ExCEL.loss`::

    image ──frozen CLIP (+SVC, §1.6)──► tokens, attention, per-layer features
    text  ──CLIP text (+TSE, §2.4)────► class embeddings (buffer)
    tokens × embeddings ──feature surgery (§3)──► static CAMs
    per-layer features ──ExCELHead (§6)──► segmentation, fused f, affinity Â
    [iter ≥ lvc_start] f ──LVC (§4)──► dynamic CAMs (re-run surgery blocks only)
    CAMs + attention (+Â) ──CAA, PAR (§5)──► pseudo labels (no grad)
    segmentation, Â vs pseudo labels ──balanced CE + affinity loss (§7)──► loss
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from ..pseudo_labels.generator import denormalize_uint8


@MODELS.register_module()
class ExCEL(BaseSegmentor):
    """ExCEL: frozen CLIP + SVC + TSE → online pseudo labels → light decoder.

    Args:
        backbone: frozen CLIP ViT (``CLIPViTBackbone``) with its SVC option.
        text_head: class embeddings (``ExCELTextHead``, TSE on or off).
        cam_head: patch-text map module (``SurgeryPatchTextMap``, §3).
        pseudo_labeler: refinement into pseudo labels
            (``ExCELPseudoLabeler``: CAA, background, PAR; §5).
        decode_head: trainable head (``ExCELHead``: fusion, transformer
            decoder, affinity prediction; §6) with its losses (§7).
        lvc_start_iter: first iteration (0-based) at which the LVC maps and
            the decoder affinity are used (VOC 14000, COCO 30000); ``None``
            switches LVC off (ablation).
        aff_target_switch_iter: first iteration at which the affinity target
            is the network's own prediction (VOC 24000); ``None``: never.
        train_cfg / test_cfg: mmseg's; ``test_cfg.mode`` is ``'whole'``.
        data_preprocessor: ``SegDataPreProcessor`` (ImageNet mean/std on RGB,
            §1.2).
    """

    def __init__(self,
                 backbone: ConfigType,
                 text_head: ConfigType,
                 cam_head: ConfigType,
                 pseudo_labeler: ConfigType,
                 decode_head: ConfigType,
                 lvc_start_iter: Optional[int] = None,
                 aff_target_switch_iter: Optional[int] = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.text_head = MODELS.build(text_head)
        self.cam_head = MODELS.build(cam_head)
        self.pseudo_labeler = MODELS.build(pseudo_labeler)
        self.decode_head = MODELS.build(decode_head)
        self.num_classes = self.decode_head.num_classes
        self.out_channels = self.decode_head.out_channels
        self.align_corners = self.decode_head.align_corners
        num_fg = self.text_head.num_fg
        if self.cam_head.num_fg != num_fg:
            raise ValueError(
                f'cam_head.num_fg={self.cam_head.num_fg} but text_head has '
                f'{num_fg} foreground classes')
        if num_fg + 1 != self.num_classes:
            raise ValueError(
                f'text_head gives {num_fg} foreground classes but '
                f'decode_head predicts {self.num_classes} classes '
                f'(expected {num_fg} + background)')
        for name, value in (('lvc_start_iter', lvc_start_iter),
                            ('aff_target_switch_iter',
                             aff_target_switch_iter)):
            if value is not None and value < 0:
                raise ValueError(f'{name} must be >= 0 or None, got {value}')
        self.lvc_start_iter = lvc_start_iter
        self.aff_target_switch_iter = aff_target_switch_iter
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.train_iter = 0
        # Pictures for PseudoLabelHook: requested ahead of time.
        self.vis_requested = False
        self.vis_cache: Optional[dict] = None

    # ------------------------------------------------------------------
    # iteration switches (driven by PseudoLabelHook)
    def set_train_iter(self, it: int) -> None:
        """Record the current training iteration (0-based)."""
        self.train_iter = int(it)

    @property
    def lvc_active(self) -> bool:
        """LVC maps + decoder affinity in the refinement (§4, §5.1)."""
        return (self.lvc_start_iter is not None
                and self.train_iter >= self.lvc_start_iter)

    @property
    def aff_target_is_pred(self) -> bool:
        """Affinity target = the network's own prediction (§7.2)."""
        return (self.aff_target_switch_iter is not None
                and self.train_iter >= self.aff_target_switch_iter)

    # ------------------------------------------------------------------
    def extract_feat(self, inputs: Tensor):
        """Frozen CLIP forward (no grad): tokens, attention, layer feats."""
        return self.backbone(inputs)

    def compute_cams(self, image_features: Tensor) -> Tensor:
        """Patch-text maps (§3) of the foreground classes, (B, P, K_fg)."""
        return self.cam_head(image_features, self.text_head())[1]

    @staticmethod
    def _cls_labels(data_samples: SampleList) -> Tensor:
        if not all(hasattr(ds, 'gt_cls_label') for ds in data_samples):
            raise KeyError('ExCEL needs image-level labels: every data sample '
                           'must carry gt_cls_label (PackWSSSInputs)')
        return torch.stack([ds.gt_cls_label for ds in data_samples]).float()

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """One ExCEL training step (§8.3); see the module docstring."""
        cls_labels = self._cls_labels(data_samples).to(inputs.device)
        # 1. frozen CLIP with SVC, static CAMs
        feats = self.extract_feat(inputs)
        cams = self.compute_cams(feats.image_features)
        # 2. trainable head on the per-layer CLIP features
        head_out = self.decode_head(feats.all_feats, feats.hw)
        seg_attn = None
        # 3. LVC: decoder features fed back into the calibrated attention
        if self.lvc_active:
            with torch.no_grad():
                lvc_feats = self.backbone.forward_lvc(
                    feats, head_out['fused'].detach())
                cams = self.compute_cams(lvc_feats.image_features)
            seg_attn = head_out['affinity'].detach()
        # 4. pseudo labels: CAA + background + PAR (no grad)
        with torch.no_grad():
            pl = self.pseudo_labeler(
                cams=cams,
                attn_weights=feats.attn_weights,
                cls_labels=cls_labels,
                images=self._par_images(inputs),
                seg_attn=seg_attn,
                grid_hw=feats.hw)
        pseudo = pl['pseudo_labels']
        for ds, label in zip(data_samples, pseudo):
            ds.pseudo_sem_seg = PixelData(data=label[None])
        # 5. losses on the pseudo labels
        aff_target = None
        if self.aff_target_is_pred:
            aff_target = resize_logits(head_out['seg'], pseudo.shape[-2:],
                                       self.align_corners).argmax(1).detach()
        losses = self.decode_head.loss_by_feat(
            head_out, pseudo, aff_target=aff_target)
        losses.update(self._pl_stats(pseudo))
        if self.vis_requested:
            self._cache_vis(inputs, pl, head_out['seg'])
        return losses

    def _par_images(self, inputs: Tensor) -> Tensor:
        """Images for PAR as the official code passes them: de-normalised,
        uint8-truncated, in [0, 1] (§5.4; the truncation flips ~1 % of the
        pseudo-label pixels if skipped)."""
        mean = self.data_preprocessor.mean.flatten().tolist()
        std = self.data_preprocessor.std.flatten().tolist()
        return denormalize_uint8(inputs, mean, std)

    def _pl_stats(self, pseudo: Tensor) -> Dict[str, Tensor]:
        """Logged (not back-propagated) pseudo-label statistics."""
        fg = (pseudo > 0) & (pseudo != 255)
        return dict(
            pl_fg_ratio=fg.float().mean(),
            pl_lvc=torch.tensor(float(self.lvc_active), device=pseudo.device))

    def _cache_vis(self, inputs: Tensor, pl: dict, seg: Tensor) -> None:
        """Small detached CPU copy of the first image for the hook."""
        mean = self.data_preprocessor.mean.view(3, 1, 1)
        std = self.data_preprocessor.std.view(3, 1, 1)
        img = (inputs[0] * std + mean).clamp(0, 255).byte().cpu()
        cams = pl['cams_with_bkg'][:, 1:][:, :int(pl['valid'][0].sum())]
        pred = resize_logits(seg[:1], inputs.shape[-2:],
                             self.align_corners).argmax(1)[0]
        self.vis_cache = dict(
            image=img,
            cams=cams[0].detach().float().cpu(),
            pseudo_label=pl['pseudo_labels'][0].cpu(),
            pred=pred.cpu())

    # ------------------------------------------------------------------
    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Segmentation logits at the input resolution."""
        feats = self.extract_feat(inputs)
        seg = self.decode_head(feats.all_feats, feats.hw)['seg']
        return resize_logits(seg, inputs.shape[-2:], self.align_corners)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Decoder prediction, post-processed like any mmseg model."""
        if data_samples is not None:
            batch_img_metas = [ds.metainfo for ds in data_samples]
        else:
            batch_img_metas = [
                dict(
                    ori_shape=inputs.shape[2:],
                    img_shape=inputs.shape[2:],
                    pad_shape=inputs.shape[2:],
                    padding_size=[0, 0, 0, 0])
            ] * inputs.shape[0]
        seg_logits = self.encode_decode(inputs, batch_img_metas)
        return self.postprocess_result(seg_logits, data_samples)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tuple[Tensor, ...]:
        """Raw outputs for tracing / FLOPs: logits, fused f, affinity."""
        feats = self.extract_feat(inputs)
        out = self.decode_head(feats.all_feats, feats.hw)
        return out['seg'], out['fused'], out['affinity']

    @torch.no_grad()
    def generate_pseudo_labels(self, inputs: Tensor,
                               data_samples: SampleList) -> dict:
        """Training-free pseudo labels (§10): static CAMs, CAA, PAR.

        Uses the decoder affinity and LVC only when ``use_decoder`` is set in
        ``test_cfg`` (a trained checkpoint); returns the pseudo labels at the
        input resolution and the intermediate maps.
        """
        cls_labels = self._cls_labels(data_samples).to(inputs.device)
        feats = self.extract_feat(inputs)
        cams = self.compute_cams(feats.image_features)
        seg_attn = None
        if (self.test_cfg or {}).get('use_decoder', False):
            out = self.decode_head(feats.all_feats, feats.hw)
            lvc_feats = self.backbone.forward_lvc(feats, out['fused'])
            cams = self.compute_cams(lvc_feats.image_features)
            seg_attn = out['affinity']
        pl = self.pseudo_labeler(
            cams=cams,
            attn_weights=feats.attn_weights,
            cls_labels=cls_labels,
            images=self._par_images(inputs),
            seg_attn=seg_attn,
            grid_hw=feats.hw)
        pl['raw_cams'] = cams
        pl['cams_highres'] = pl['cams_with_bkg'][:, 1:]
        return pl


def resize_logits(x: Tensor, size, align_corners: bool = False) -> Tensor:
    """Bilinear resize of (B, C, h, w) maps (align_corners as the head)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(
        x, size=tuple(size), mode='bilinear', align_corners=align_corners)

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCEL single-stage WSSS segmentor (Yang et al., CVPR 2025).

The data flow of one training step (docs/methods/excel.md §8.3) reads top to
bottom in
:meth:`ExCEL.loss`::

    image ──frozen CLIP (+SVC, §1.6)──► tokens, attention, per-layer features
    text  ──CLIP text (+TSE, §2.4)────► class embeddings (buffer)
    tokens × embeddings ──feature surgery (§3)──► static CAMs
    per-layer features ──ExCELHead (§6)──► segmentation, fused f, affinity Â
    [iter ≥ lvc_start] f ──LVC (§4)──► dynamic CAMs (re-run surgery blocks only)
    CAMs + attention (+Â) ──CAA, PAR (§5)──► pseudo labels (no grad)
    segmentation, Â vs pseudo labels ──balanced CE + affinity loss (§7)──► loss
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from ..pseudo_labels.generator import (denormalize_uint8, present_classes,
                                       stack_cls_labels)


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
        mask_supervision: train the decoder on the exact masks
            (``gt_sem_seg`` of the training samples, so the train pipeline
            needs ``LoadImageLevelLabels(keep_mask=True)``) instead of the
            online pseudo labels: the fully supervised ceiling of the same
            decoder and schedule (configs/toy_world/README.md). Not WSSS; the pseudo
            labeler and LVC are skipped in training.
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
                 mask_supervision: bool = False,
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
        if getattr(self.backbone, 'attn_layers', 0) is None:
            # attention weights only where CAA reads them (fused elsewhere)
            self.backbone.attn_layers = self.pseudo_labeler.affinity.num_layers
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
        self.mask_supervision = bool(mask_supervision)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self._explicit_iter: Optional[int] = None
        # Pictures for PseudoLabelHook: requested ahead of time.
        self.vis_requested = False
        self.vis_cache: Optional[dict] = None

    # ------------------------------------------------------------------
    # iteration switches
    def set_train_iter(self, it: Optional[int]) -> None:
        """Pin the training iteration (0-based) for direct ``loss()`` calls;
        ``None`` un-pins it. Under mmengine's Runner nothing needs to call
        this: the iteration is read from the ``MessageHub``."""
        self._explicit_iter = None if it is None else int(it)

    @property
    def train_iter(self) -> int:
        """Current training iteration: the pinned one, else the Runner's
        (``MessageHub`` info ``'iter'``, kept by mmengine's
        ``RuntimeInfoHook`` whatever ``custom_hooks`` a config sets).

        Raises ``RuntimeError`` when neither exists and a switch depends on
        it, so LVC can never silently stay off."""
        if self._explicit_iter is not None:
            return self._explicit_iter
        it = MessageHub.get_current_instance().get_info('iter')
        if it is None:
            if (self.lvc_start_iter is None
                    and self.aff_target_switch_iter is None):
                return 0
            raise RuntimeError(
                'ExCEL does not know the training iteration (LVC starts at '
                f'{self.lvc_start_iter}, affinity target switch at '
                f'{self.aff_target_switch_iter}): train it with mmengine\'s '
                'Runner (its RuntimeInfoHook records the iteration) or call '
                'model.set_train_iter(it) before loss()')
        return int(it)

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

    def _cls_labels(self, data_samples: SampleList) -> Tensor:
        """(B, K_fg) image-level labels, length-checked against the model."""
        return stack_cls_labels(data_samples, self.text_head.num_fg, 'ExCEL')

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """One ExCEL training step (§8.3); see the module docstring.

        Under ``--amp`` only the trainable decoder runs in autocast: the
        frozen CLIP, the patch-text maps, LVC and the pseudo labeler run in
        float32, as the method is defined (all CLIP computation in fp32).
        """
        cls_labels = self._cls_labels(data_samples).to(inputs.device)
        lvc_active = self.lvc_active
        # 1. frozen CLIP with SVC, static CAMs (fp32 even under --amp)
        with fp32(inputs):
            feats = self.extract_feat(inputs.float())
            cams = self.compute_cams(feats.image_features)
        # 2. trainable head on the per-layer CLIP features (autocast here)
        head_out = self.decode_head(feats.all_feats, feats.hw)
        if self.mask_supervision:  # the fully supervised ceiling
            masks = self._gt_masks(data_samples, inputs.device)
            return self.decode_head.loss_by_feat(head_out, masks)
        seg_attn = None
        with fp32(inputs):
            # 3. LVC: decoder features fed back into the calibrated attention
            if lvc_active:
                with torch.no_grad():
                    lvc_feats = self.backbone.forward_lvc(
                        feats, head_out['fused'].detach().float())
                    cams = self.compute_cams(lvc_feats.image_features)
                seg_attn = head_out['affinity'].detach().float()
            # 4. pseudo labels: CAA + background + PAR (no grad)
            with torch.no_grad():
                pl = self.pseudo_labeler(
                    cams=cams,
                    attn_weights=feats.attn_weights,
                    cls_labels=cls_labels,
                    images=self._par_images(inputs.float()),
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
        losses.update(self._pl_stats(pseudo, lvc_active, data_samples))
        losses['pl_aff_pred'] = torch.tensor(
            float(aff_target is not None), device=pseudo.device)
        if self.vis_requested:
            self._cache_vis(inputs, pl, head_out['seg'])
        return losses

    @staticmethod
    def _gt_masks(data_samples: SampleList, device) -> Tensor:
        """(B, H, W) exact training masks for ``mask_supervision``."""
        if not all('gt_sem_seg' in ds for ds in data_samples):
            raise ValueError(
                'ExCEL(mask_supervision=True) trains on the exact masks, but '
                'a training sample has no gt_sem_seg: set '
                'LoadImageLevelLabels(keep_mask=True) in the train pipeline')
        return torch.stack([ds.gt_sem_seg.data[0] for ds in data_samples
                            ]).to(device).long()

    def _par_images(self, inputs: Tensor) -> Tensor:
        """Images for PAR as the official code passes them: de-normalised,
        uint8-truncated, in [0, 1] (§5.4; the truncation flips ~1 % of the
        pseudo-label pixels if skipped)."""
        mean = self.data_preprocessor.mean.flatten().tolist()
        std = self.data_preprocessor.std.flatten().tolist()
        return denormalize_uint8(inputs, mean, std)

    def _pl_stats(self, pseudo: Tensor, lvc_active: bool,
                  data_samples: SampleList) -> Dict[str, Tensor]:
        """Logged (not back-propagated) pseudo-label statistics: foreground
        ratio, LVC on/off and, when the training pipeline keeps the masks
        (``LoadImageLevelLabels(keep_mask=True)``), the batch's pseudo-label
        mIoU (%) against them (pixels ignored in either map left out;
        classes absent from both left out of the mean)."""
        fg = (pseudo > 0) & (pseudo != 255)
        stats = dict(
            pl_fg_ratio=fg.float().mean(),
            pl_lvc=torch.tensor(float(lvc_active), device=pseudo.device))
        gts = [ds.gt_sem_seg.data[0] for ds in data_samples
               if 'gt_sem_seg' in ds]
        if len(gts) == len(data_samples) and all(
                tuple(g.shape) == tuple(pseudo.shape[1:]) for g in gts):
            gt = torch.stack(gts).to(pseudo.device).long()
            n = self.num_classes
            keep = (gt != 255) & (pseudo != 255)
            conf = torch.bincount(
                gt[keep] * n + pseudo[keep], minlength=n * n).view(n, n)
            inter = conf.diag().float()
            union = conf.sum(0).float() + conf.sum(1).float() - inter
            seen = union > 0
            stats['pl_miou'] = (inter[seen] / union[seen]).mean() * 100 \
                if seen.any() else pseudo.new_tensor(float('nan')).float()
        return stats

    def _cache_vis(self, inputs: Tensor, pl: dict, seg: Tensor) -> None:
        """Small detached CPU copy of the first image for the hook."""
        mean = self.data_preprocessor.mean.view(3, 1, 1)
        std = self.data_preprocessor.std.view(3, 1, 1)
        img = (inputs[0] * std + mean).clamp(0, 255).byte().cpu()
        k = int(pl['valid'][0].sum())
        cams = pl['cams_with_bkg'][:, 1:][:, :k]
        pred = resize_logits(seg[:1], inputs.shape[-2:],
                             self.align_corners).argmax(1)[0]
        self.vis_cache = dict(
            image=img,
            cams=cams[0].detach().float().cpu(),
            cam_classes=(pl['class_idx'][0, :k] + 1).tolist(),
            lvc=bool(self.lvc_active),
            pseudo_label=pl['pseudo_labels'][0].cpu(),
            pred=pred.cpu())

    # ------------------------------------------------------------------
    def seg_logits_grid(self, inputs: Tensor) -> Tensor:
        """Decoder logits at the patch grid, (B, C, H/p, W/p): what the
        official scripts upsample (once) to the original image size."""
        with fp32(inputs):
            feats = self.extract_feat(inputs.float())
        return self.decode_head(feats.all_feats, feats.hw)['seg']

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Segmentation logits at the input resolution."""
        return resize_logits(
            self.seg_logits_grid(inputs), inputs.shape[-2:],
            self.align_corners)

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Single-scale prediction of the official validation: the grid
        logits are upsampled ONCE, bilinearly, to each image's original size
        (``ori_shape``), then flipped back if the view was flipped; a padded
        input falls back to mmseg's crop-then-resize (docs/evaluation.md)."""
        if data_samples is None:
            return self.postprocess_result(
                self.encode_decode(inputs, []), None)
        val_pl = (self.test_cfg or {}).get('val_pseudo_labels')
        with fp32(inputs):
            feats = self.extract_feat(inputs.float())
        head_out = self.decode_head(feats.all_feats, feats.hw)
        grid = head_out['seg']
        pseudo = None
        if val_pl and all('gt_cls_label' in ds for ds in data_samples):
            pseudo = self._val_pseudo_labels(inputs, data_samples, feats,
                                             head_out, val_pl)
        for i, ds in enumerate(data_samples):
            meta = ds.metainfo
            logits = logits_to_original(grid[i:i + 1], meta,
                                        inputs.shape[-2:], self.align_corners)
            ds.set_data({
                'seg_logits': PixelData(data=logits),
                'pred_sem_seg': PixelData(data=logits.argmax(0, keepdim=True))
            })
            if pseudo is not None:
                ds.set_data({
                    'pred_pseudo_sem_seg': PixelData(data=pseudo[i][None])
                })
        return data_samples

    @torch.no_grad()
    def _val_pseudo_labels(self, inputs: Tensor, data_samples: SampleList,
                           feats, head_out: dict, cfg: dict) -> List[Tensor]:
        """Pseudo labels of a validation image as the official training
        logs score them ("pseudo mIoU" next to seg mIoU): static maps, CAA
        with the decoder affinity and ``cfg['box_threshold']`` (0.75), at the
        original size, PAR on the normalised network input."""
        cls_labels = self._cls_labels(data_samples).to(inputs.device)
        with fp32(inputs):
            cams = self.compute_cams(feats.image_features)
            r = self.pseudo_labeler.refine(
                cams, feats.attn_weights, cls_labels, feats.hw,
                seg_attn=head_out['affinity'].float(),
                box_threshold=cfg.get('box_threshold'))
            out = []
            for i, ds in enumerate(data_samples):
                k = int(r['valid'][i].sum())
                size = tuple(ds.metainfo.get('ori_shape',
                                             inputs.shape[-2:]))[:2]
                out.append(
                    self.pseudo_labeler.label_at_size(
                        r['refined'][i, :k], r['class_idx'][i, :k],
                        inputs[i:i + 1].float(), size)['pseudo_label'])
        return out

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tuple[Tensor, ...]:
        """Raw outputs for tracing / FLOPs: logits, fused f, affinity."""
        feats = self.extract_feat(inputs)
        out = self.decode_head(feats.all_feats, feats.hw)
        return out['seg'], out['fused'], out['affinity']

    # ------------------------------------------------------------------
    # pseudo labels of a whole split (docs/evaluation.md)
    @torch.no_grad()
    def flip_fused_lvc_maps(self, inputs: Tensor) -> Dict[str, Tensor]:
        """LVC maps of a trained model with flip fusion (trained-checkpoint
        pseudo labels, docs/evaluation.md).

        ``inputs`` (1, 3, H, W): the image and its flip run as their own
        batch of two; each view's decoder features ``f`` drive LVC on that
        batch (the LVC centring mean covers both views, as in the official
        code); ``max(view 0, flip(view 1))`` per class; then
        ``(x − min) / (max(x − min) + 1e-5)`` per class map.

        Returns ``views`` (2, K, h, w), ``fused_max`` (K, h, w) and
        ``fused`` (P, K).
        """
        if inputs.shape[0] != 1:
            raise ValueError('flip_fused_lvc_maps takes one image, got a '
                             f'batch of {inputs.shape[0]}')
        x2 = torch.cat([inputs, inputs.flip(-1)], 0).float()
        with fp32(inputs):
            feats = self.extract_feat(x2)
            out = self.decode_head(feats.all_feats, feats.hw)
            lvc = self.backbone.forward_lvc(feats, out['fused'].float())
            maps = self.compute_cams(lvc.image_features)  # (2, P, K)
        h, w = feats.hw
        views = maps.transpose(1, 2).reshape(2, -1, h, w)
        return flip_fuse(views, self.pseudo_label_eps)

    @property
    def pseudo_label_eps(self) -> float:
        """ε of the flip-fusion min–max (``test_cfg.lvc_norm_eps``, 1e-5)."""
        return float((self.test_cfg or {}).get('lvc_norm_eps', 1e-5))

    @torch.no_grad()
    def generate_pseudo_labels(self, inputs: Tensor,
                               data_samples: SampleList) -> dict:
        """Pseudo labels of a split at each image's ORIGINAL size.

        Training-free (``test_cfg.use_decoder=False``, docs/evaluation.md):
        static maps (SVC + TSE + feature surgery) of the square network
        input, CAA (τ and layers of the pseudo labeler), per-class min–max,
        bilinear upsampling to the original size (``ori_shape``), background
        ``1 − max``, PAR with the normalised network input upsampled to that
        size, argmax. With a trained checkpoint (``use_decoder=True``) the
        maps are the flip-fused LVC maps (:meth:`flip_fused_lvc_maps`) and
        CAA uses the decoder affinity of the un-flipped forward; images then
        run one at a time, as the batch-wide means of LVC and of the affinity
        make a batch of several images differ.

        Returns lists (one entry per image) under ``pseudo_labels`` (H, W)
        long, ``cams_with_bkg`` (1 + k, H, W) before PAR, ``refined_cams``
        (1 + k, H, W) after PAR, ``keys`` (1 + k,) the label value of each
        channel, ``cams_highres`` (k, H, W) and ``refined`` (k, h, w).
        """
        cls_labels = self._cls_labels(data_samples).to(inputs.device)
        use_decoder = (self.test_cfg or {}).get('use_decoder', False)
        if use_decoder:
            parts = [
                self._pseudo_trained(inputs[i:i + 1], cls_labels[i:i + 1])
                for i in range(inputs.shape[0])
            ]
            refined = [p[0] for p in parts]
            class_idx = [p[1] for p in parts]
        else:
            with fp32(inputs):
                feats = self.extract_feat(inputs.float())
                cams = self.compute_cams(feats.image_features)
                out = self.pseudo_labeler.refine(
                    cams, feats.attn_weights, cls_labels, feats.hw)
            refined, class_idx = [], []
            for i in range(inputs.shape[0]):
                k = int(out['valid'][i].sum())
                refined.append(out['refined'][i, :k])
                class_idx.append(out['class_idx'][i, :k])
        result: Dict[str, list] = {
            k: []
            for k in ('pseudo_labels', 'cams_with_bkg', 'refined_cams',
                      'keys', 'cams_highres', 'refined')
        }
        for i, ds in enumerate(data_samples):
            size = tuple(ds.metainfo.get('ori_shape', inputs.shape[-2:]))[:2]
            with fp32(inputs):
                r = self.pseudo_labeler.label_at_size(
                    refined[i], class_idx[i], inputs[i:i + 1].float(), size)
            result['pseudo_labels'].append(r['pseudo_label'])
            result['cams_with_bkg'].append(r['cams_with_bkg'])
            result['refined_cams'].append(r['refined_cams'])
            result['keys'].append(r['keys'])
            result['cams_highres'].append(r['cams_with_bkg'][1:])
            result['refined'].append(refined[i])
        result['labels_are_original'] = True
        return result

    def _pseudo_trained(self, x: Tensor,
                        cls_labels: Tensor) -> Tuple[Tensor, Tensor]:
        """CAA of the flip-fused LVC maps with the decoder affinity of the
        un-flipped batch-1 forward: refined maps (k, h, w), class ids."""
        with fp32(x):
            feats = self.extract_feat(x.float())
            out = self.decode_head(feats.all_feats, feats.hw)
            fused = self.flip_fused_lvc_maps(x)['fused'][None]
            r = self.pseudo_labeler.refine(
                fused, feats.attn_weights, cls_labels, feats.hw,
                seg_attn=out['affinity'].float())
        k = int(r['valid'][0].sum())
        return r['refined'][0, :k], r['class_idx'][0, :k]


def flip_fuse(views: Tensor, eps: float = 1e-5) -> Dict[str, Tensor]:
    """Flip fusion of the LVC maps of an image (view 0) and its flip
    (view 1, flipped coordinates), (2, K, h, w): ``fused_max`` =
    ``max(view 0, flip(view 1))``; ``fused`` (P, K) its per-class
    ``(x − min) / (max(x − min) + eps)``."""
    fused_max = torch.maximum(views[0], views[1].flip(-1))
    return dict(
        views=views,
        fused_max=fused_max,
        fused=minmax_flat(fused_max, eps).flatten(1).t())


def minmax_flat(maps: Tensor, eps: float) -> Tensor:
    """``(x − min) / (max(x − min) + eps)`` of each (h, w) map of (K, h, w)."""
    flat = maps.flatten(1)
    flat = flat - flat.amin(1, keepdim=True)
    return (flat / (flat.amax(1, keepdim=True) + eps)).view_as(maps)


def logits_to_original(logits: Tensor, meta: dict, input_hw: Sequence[int],
                       align_corners: bool = False) -> Tensor:
    """(1, C, h, w) grid logits of one view → (C, H, W) at ``ori_shape``.

    Unpadded views are upsampled once from the grid (the official
    validation); padded views are first resized to the padded input and
    cropped (mmseg's ``postprocess_result``). A flipped view is flipped
    back after the resize, as the official scripts do.
    """
    pad = meta.get('img_padding_size', meta.get('padding_size', [0] * 4))
    ori = tuple(meta.get('ori_shape', input_hw))[:2]
    if pad is not None and any(pad):
        left, right, top, bottom = pad
        h, w = input_hw
        logits = resize_logits(logits, input_hw, align_corners)
        logits = logits[..., top:h - bottom, left:w - right]
    logits = resize_logits(logits, ori, align_corners)
    if meta.get('flip', False):
        direction = meta.get('flip_direction', 'horizontal')
        logits = logits.flip(-1 if direction == 'horizontal' else -2)
    return logits[0]


def fp32(like: Tensor):
    """Context that switches autocast off on ``like``'s device (the frozen
    CLIP and the refinement run in float32 under ``--amp``)."""
    return torch.autocast(like.device.type, enabled=False)


def resize_logits(x: Tensor, size, align_corners: bool = False) -> Tensor:
    """Bilinear resize of (B, C, h, w) maps (align_corners as the head)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(
        x, size=tuple(size), mode='bilinear', align_corners=align_corners)

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""CLIP-ES: training-free pseudo masks from a frozen CLIP
(docs/methods/clip_es.md §1-6).

::

    image ──PIL bicubic to ⌈H/16⌉·16 × ⌈W/16⌉·16, CLIP mean/std (§2)──►
    frozen CLIP ViT ──Softmax-GradCAM per present class (§3)──► CAMs (h, w)
    ──CAA: Sinkhorn affinity of the last 8 attention maps ⊙ boxes (§5)──►
    min-max, bilinear to the ORIGINAL H×W, fp16 ──► [(1 − max)^α; CAMs]
    ──dense CRF on the cv2 (BGR, mean-subtracted uint8) image (§6.2)──►
    argmax, confidence < 0.95 → 255 (the code's CGL, §6.3)

The model is training-free: :meth:`loss` raises. :meth:`generate_pseudo_labels`
is what ``tools/generate_pseudo_labels.py`` calls; it returns labels at the
original image size (``labels_are_original=True``).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import (OptConfigType, OptMultiConfig, OptSampleList,
                         SampleList)
from PIL import Image
from torch import Tensor

from ...datasets.transforms.loading import read_rgb_image
from ..pseudo_labels.affinity import AttentionAffinity, minmax_upsample
from ..pseudo_labels.crf import DenseCRF, clip_es_prob
from ..pseudo_labels.generator import stack_cls_labels
from ..pseudo_labels.gradcam import SoftmaxGradCAM
from ..text.clip_text import (encode_class_texts, get_clip_tokenizer,
                              load_clip_model)
from ..text.prompts import (resolve_bg_names, resolve_class_names,
                            resolve_templates)

#: CLIP's normalisation statistics (RGB, [0, 1] scale), docs/methods/clip_es.md
#§2.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_es_input(image_rgb: Image.Image,
                  patch: int = 16,
                  mean: Sequence[float] = CLIP_MEAN,
                  std: Sequence[float] = CLIP_STD) -> Tensor:
    """The official CLIP-ES transform (§2): PIL bicubic resize to
    (⌈H/p⌉·p, ⌈W/p⌉·p), RGB, /255, normalise. Returns (3, H', W')."""
    w, h = image_rgb.size
    size = (math.ceil(w / patch) * patch, math.ceil(h / patch) * patch)
    img = image_rgb.resize(size, Image.BICUBIC).convert('RGB')
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())
    x = x.permute(2, 0, 1).float().div(255)
    m = torch.tensor(mean).view(3, 1, 1)
    s = torch.tensor(std).view(3, 1, 1)
    return (x - m) / s


@MODELS.register_module()
class CLIPES(BaseSegmentor):
    """CLIP-ES pseudo-mask generator (training-free; docs/methods/clip_es.md).

    Args:
        clip: ``dict(model_name, pretrained, cache_dir)``: the CLIP weight
            source (OpenAI ``ViT-B-16.pt`` for the paper; an OpenAI-layout
            state dict with ``model_name=None`` infers the architecture).
        class_names: foreground names or a set of :mod:`..text.prompts`
            (``'voc_clip_es'``, ``'coco_clip_es'``: synonym-fused, §2.1).
        bg_names: background set (``'voc'``: M = 25, ``'coco'``: M = 23).
        templates: prompt templates (``'origami'``: "a clean origami {}.").
        gradcam: kwargs of :class:`SoftmaxGradCAM` (``num_attn_layers=8``).
        affinity: kwargs of :class:`AttentionAffinity`
            (``num_layers=8, box_threshold=0.4``; COCO 0.7).
        bg_power: α of the background ``(1 − max_c CAM_c)^α`` (1 for CRF).
        crf: :class:`DenseCRF` config (``image_mode='clip_es'``,
            ``unary_dtype='float16'``, ``confidence_threshold=0.95``) or None
            (argmax of ``[bg; CAMs]``, the CAM "seed").
        test_cfg: ``input_source``: ``'file'`` (default: re-read
            ``img_path`` with PIL and apply the official transform, exact)
            or ``'inputs'`` (use the preprocessed ``inputs``: crop to
            ``img_shape``, torch bicubic-antialias resize to a patch multiple
            when needed); ``predict_ignore`` (bool, default False): whether
            :meth:`predict` marks low-confidence pixels 255 (the pseudo-mask
            mIoU of the paper is computed without it).
        mean / std: CLIP normalisation for ``input_source='file'``.
    """

    def __init__(self,
                 clip: dict,
                 class_names: Union[str, Sequence[str]] = 'voc_clip_es',
                 bg_names: Union[str, Sequence[str], None] = 'voc',
                 templates: Union[str, Sequence[str], None] = 'origami',
                 gradcam: Optional[dict] = None,
                 affinity: Optional[dict] = None,
                 bg_power: float = 1.0,
                 crf: Optional[dict] = None,
                 mean: Sequence[float] = CLIP_MEAN,
                 std: Sequence[float] = CLIP_STD,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        clip = dict(clip)
        unknown = set(clip) - {'model_name', 'pretrained', 'cache_dir'}
        if unknown:
            raise ValueError(f'unknown keys in clip config: {sorted(unknown)}')
        self.class_names: List[str] = resolve_class_names(class_names)
        self.bg_names: List[str] = resolve_bg_names(bg_names)
        self.templates: List[str] = resolve_templates(templates)
        self.num_fg = len(self.class_names)
        self.num_classes = self.num_fg + 1
        self.out_channels = self.num_classes
        self.align_corners = False
        model = load_clip_model(
            clip.get('model_name'), clip.get('pretrained'),
            clip.get('cache_dir'))
        tok = get_clip_tokenizer(clip.get('model_name'))
        with torch.no_grad():
            txt = encode_class_texts(model, tok,
                                     self.class_names + self.bg_names,
                                     self.templates)
        self.register_buffer('fg_text', txt[:self.num_fg].contiguous(), False)
        self.register_buffer('bg_text', txt[self.num_fg:].contiguous(), False)
        self.logit_scale = float(model.logit_scale.exp().item())
        self.visual = model.visual.eval().requires_grad_(False)
        del model
        self.gradcam = SoftmaxGradCAM(**(gradcam or {}))
        self.affinity = AttentionAffinity(
            **(affinity or dict(num_layers=8, box_threshold=0.4)))
        if self.affinity.num_layers > self.gradcam.num_attn_layers:
            raise ValueError(
                f'affinity.num_layers={self.affinity.num_layers} exceeds '
                f'gradcam.num_attn_layers={self.gradcam.num_attn_layers}')
        self.bg_power = float(bg_power)
        self.crf: Optional[DenseCRF] = None
        if crf is not None:
            crf = dict(crf)
            crf.pop('type', None)
            self.crf = DenseCRF(**crf)
        self.mean, self.std = tuple(mean), tuple(std)
        self.train_cfg = train_cfg
        self.test_cfg = dict(test_cfg or {})
        src = self.test_cfg.get('input_source', 'file')
        if src not in ('file', 'inputs'):
            raise ValueError(
                "test_cfg.input_source must be 'file' or 'inputs', "
                f'got {src!r}')

    def train(self, mode: bool = True):
        """CLIP stays in eval mode (frozen, training-free)."""
        super().train(mode)
        self.visual.eval()
        return self

    # ------------------------------------------------------------------
    def present_classes(self, data_sample: SegDataSample) -> Tensor:
        """0-based foreground ids of ``gt_cls_label`` (ascending).

        The official order is the XML first-appearance order; every step is
        equivariant to the class order (softmax, per-class CAA, Potts CRF),
        so only exact argmax ties could differ.
        """
        labels = stack_cls_labels([data_sample], self.num_fg, 'CLIP-ES')[0]
        return torch.nonzero(labels > 0).flatten().long()

    def _network_inputs(self, inputs: Tensor,
                        data_samples: SampleList) -> List[Tensor]:
        """Per image the (3, H', W') CLIP input (§2)."""
        patch = self.visual.conv1.stride
        out = []
        for i, ds in enumerate(data_samples):
            if self.test_cfg.get('input_source', 'file') == 'file':
                img = Image.fromarray(read_rgb_image(ds.img_path))
                x = clip_es_input(img, patch[0], self.mean, self.std)
            else:
                h, w = ds.metainfo.get('img_shape', inputs.shape[-2:])[:2]
                x = inputs[i, :, :h, :w].float()
                hh = math.ceil(h / patch[0]) * patch[0]
                ww = math.ceil(w / patch[1]) * patch[1]
                if (hh, ww) != (h, w):
                    x = F.interpolate(
                        x[None], (hh, ww), mode='bicubic', antialias=True,
                        align_corners=False)[0]
            out.append(x.to(self.fg_text.device))
        return out

    @staticmethod
    def _out_size(ds: SegDataSample, x: Tensor,
                  source: str) -> Tuple[int, int]:
        """Original image size (``ori_shape``), else the input size."""
        if 'ori_shape' in ds.metainfo:
            return tuple(ds.metainfo['ori_shape'][:2])
        return tuple(x.shape[-2:])

    def refined_cams(self, inputs: Tensor,
                     data_samples: SampleList) -> List[Dict[str, Tensor]]:
        """Per image ``keys`` (K,), ``cams`` (K, h, w) initial, ``refined``
        (K, H, W) CAA maps at the original size in fp16 (what the official
        script saves), ``boxes`` (K, h, w)."""
        images = self._network_inputs(inputs, data_samples)
        keys = [self.present_classes(ds).to(self.fg_text.device)
                for ds in data_samples]
        source = self.test_cfg.get('input_source', 'file')
        results: List[Optional[Dict[str, Tensor]]] = [None] * len(images)
        todo = [i for i, k in enumerate(keys) if k.numel() > 0]
        for i in range(len(images)):
            if i not in todo:  # no present class: everything background
                h, w = self._out_size(data_samples[i], images[i], source)
                results[i] = dict(
                    keys=keys[i],
                    cams=images[i].new_zeros(0, 1, 1),
                    boxes=images[i].new_zeros(0, 1, 1),
                    refined=images[i].new_zeros(0, h, w).half())
        if todo:
            txt = [torch.cat([self.fg_text[keys[i]], self.bg_text])
                   for i in todo]
            g = self.gradcam(self.visual, [images[i] for i in todo], txt,
                             [int(keys[i].numel()) for i in todo],
                             self.logit_scale)
            for r, i in zip(g, todo):
                cams = r['cams'].float()
                k, h, w = cams.shape
                refined, boxes, _ = self.affinity(
                    r['attn_last'][:, None], cams.reshape(1, k, h * w)
                    .transpose(1, 2), (h, w))
                size = self._out_size(data_samples[i], images[i], source)
                hi = minmax_upsample(refined, size)[0].half()
                results[i] = dict(
                    keys=keys[i], cams=cams, boxes=boxes[0], refined=hi)
        return results

    def _crf_image(self, ds: SegDataSample) -> np.ndarray:
        """RGB uint8 of ``img_path`` decoded by OpenCV as the official CRF
        (``cv2.imread``, BGR; :class:`DenseCRF` flips it back)."""
        img = cv2.imread(ds.img_path, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f'cannot read image {ds.img_path}')
        return np.ascontiguousarray(img[..., ::-1])

    def _labels(self, res: Dict[str, Tensor], ds: SegDataSample,
                ignore: bool) -> Tuple[Tensor, Tensor]:
        """(H, W) labels and the (1 + K, H, W) scores ``[bg; CAMs]``."""
        keys = torch.cat([res['keys'].new_zeros(1), res['keys'] + 1]).cpu()
        if res['keys'].numel() == 0:  # no present class: all background
            prob = torch.ones(1, *res['refined'].shape[-2:])
            return prob[0].long() * 0, prob
        prob = clip_es_prob(res['refined'].cpu().numpy(), self.bg_power)
        if self.crf is None:
            lab = keys[torch.from_numpy(prob.astype(np.float32)).argmax(0)]
        else:
            labs, raw, _ = self.crf.predict([self._crf_image(ds)], [prob],
                                            [keys])
            lab = labs[0] if ignore else raw[0]
        return lab.long(), torch.from_numpy(prob.astype(np.float32))

    # ------------------------------------------------------------------
    def generate_pseudo_labels(self, inputs: Tensor,
                               data_samples: SampleList) -> dict:
        """Pseudo masks (§6): CRF + confidence ignoring when ``crf`` is set.

        Returns a dict: ``pseudo_labels`` (B, Hmax, Wmax) long at the
        ORIGINAL image sizes (top-left, 255 padding), ``labels_are_original``
        True, ``cams_with_bkg`` (B, 1 + Kmax, Hmax, Wmax) ``[bg; CAMs]``,
        ``cams_highres`` (B, Kmax, Hmax, Wmax), ``class_idx`` / ``valid``
        (B, Kmax), ``ori_hw`` (B, 2).
        """
        res = self.refined_cams(inputs, data_samples)
        labels, scores = [], []
        for r, ds in zip(res, data_samples):
            lab, prob = self._labels(r, ds, ignore=True)
            labels.append(lab)
            scores.append(prob)
        dev = inputs.device
        hmax = max(x.shape[0] for x in labels)
        wmax = max(x.shape[1] for x in labels)
        kmax = max(max(r['keys'].numel() for r in res), 1)
        b = len(res)
        pl = torch.full((b, hmax, wmax), 255, dtype=torch.long)
        cwb = torch.zeros(b, 1 + kmax, hmax, wmax)
        cls = torch.zeros(b, kmax, dtype=torch.long)
        valid = torch.zeros(b, kmax, dtype=torch.bool)
        for i, (lab, prob, r) in enumerate(zip(labels, scores, res)):
            h, w = lab.shape
            pl[i, :h, :w] = lab
            cwb[i, :prob.shape[0], :h, :w] = prob
            k = r['keys'].numel()
            cls[i, :k] = r['keys'].cpu()
            valid[i, :k] = True
        return dict(
            pseudo_labels=pl.to(dev),
            labels_are_original=True,
            ori_hw=torch.tensor([x.shape for x in labels]),
            cams_with_bkg=cwb.to(dev),
            cams_highres=cwb[:, 1:].to(dev),
            class_idx=cls.to(dev),
            valid=valid.to(dev))

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """CLIP-ES is training-free (docs/methods/clip_es.md §1)."""
        raise NotImplementedError(
            'CLIPES is training-free: generate pseudo masks with '
            'tools/generate_pseudo_labels.py and train a segmenter '
            '(configs/baselines/*clip-es-pl*) on them')

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Pseudo masks as ``pred_sem_seg`` at the original size;
        ``seg_logits`` = the un-normalised ``[bg; CAMs]`` scores over all
        ``num_classes`` channels (absent classes 0)."""
        if data_samples is None:
            raise ValueError('CLIPES.predict needs data samples with '
                             'gt_cls_label (image-level labels)')
        ignore = bool(self.test_cfg.get('predict_ignore', False))
        res = self.refined_cams(inputs, data_samples)
        for r, ds in zip(res, data_samples):
            lab, prob = self._labels(r, ds, ignore=ignore)
            logits = prob.new_zeros(self.num_classes, *prob.shape[-2:])
            logits[torch.cat([r['keys'].new_zeros(1), r['keys'] + 1]).cpu()] \
                = prob
            ds.set_data(
                dict(
                    seg_logits=PixelData(data=logits.to(inputs.device)),
                    pred_sem_seg=PixelData(data=lab[None].to(inputs.device))))
        return data_samples

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Not defined without image-level labels (CAMs need them)."""
        raise NotImplementedError(
            'CLIPES needs image-level labels: use predict() / '
            'generate_pseudo_labels() with data samples')

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Image embedding of the mean patch token (§3.1), (B, E)."""
        raise NotImplementedError('CLIPES has no feature output; use predict')

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """[bg; CAMs] scores (B, 1 + Kmax, H, W) (see
        :meth:`generate_pseudo_labels`)."""
        if data_samples is None:
            raise ValueError('CLIPES._forward needs data samples with '
                             'gt_cls_label')
        return self.generate_pseudo_labels(inputs,
                                           data_samples)['cams_with_bkg']

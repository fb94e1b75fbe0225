# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Multi-scale + flip + dense-CRF inference of ExCEL (docs/evaluation.md).

The official protocol (ExCEL's ``infer_seg_voc.py`` / ``infer_seg_coco.py``):

1. the image is normalised at its original size (H, W); for every scale s the
   normalised float tensor is resized (bilinear) to the square
   ``int(base · s)``² and run together with its horizontal flip;
2. both views' grid logits are upsampled to (H, W) (COCO: to
   ``int(0.2 H) × int(0.2 W)``); the scale's logits are the mean of the view
   and the flipped-back flip — except that VOC keeps only the un-flipped view
   at scale 1.0;
3. the final logits are the plain mean of the per-scale logits (each scale
   weighs 1 / #scales, whatever its number of views), summed in the
   official call order (scale 1.0 first); COCO upsamples them to (H, W);
4. softmax, then dense CRF on the original uint8 RGB image; argmax.

mmseg's ``SegTTAModel`` averages the softmax of every view and mmseg's
``TestTimeAug`` resizes uint8 images, so :class:`ExCELTTAModel` makes the
views itself on the device from the un-resized image (the ``tta_pipeline``
only loads the image and its labels).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import mmcv
import torch
import torch.nn.functional as F
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor


def fuse_scale(logits: Tensor, size: Tuple[int, int], use_flip: bool,
               align_corners: bool = False) -> Tensor:
    """One scale's logits at ``size`` from its two views.

    Args:
        logits: (2, C, h, w) grid logits of the view and of its flip (in
            flipped coordinates).
        size: output (H, W).
        use_flip: average with the flipped-back flip; ``False`` keeps the
            un-flipped view alone (VOC at scale 1.0).

    Returns:
        (C, H, W): ``(up[0] + flip(up[1])) / 2`` or ``up[0]``.
    """
    up = F.interpolate(
        logits, size=tuple(size), mode='bilinear', align_corners=align_corners)
    if not use_flip:
        return up[0]
    return (up[0] + up[1].flip(-1)) / 2


def mean_over_scales(per_scale: Sequence[Tensor]) -> Tensor:
    """Plain mean of the per-scale logits (each scale weighs equally)."""
    return torch.mean(torch.stack(list(per_scale)), 0)


@MODELS.register_module()
class ExCELTTAModel(BaseTTAModel):
    """Official ms + flip (+ CRF) inference around an ExCEL segmentor.

    Args:
        module: the segmentor config (set by ``tools/test.py --tta``).
        scales: scale factors, in the order the official script sums them
            (``[1.0, 0.7, 1.2, 1.5]``: scale 1.0 runs first).
        base_size: side of the square base input (320); each scale's input
            is ``int(base_size · s)`` square. ``None``: the module data
            preprocessor's ``test_size``.
        sizes: explicit square sides instead of ``scales`` (e.g. the toy
            world's multiples of its 8-pixel patch); entries may be ints or
            (h, w).
        flip: run the horizontal flip of every scale.
        drop_flip_scales: scales (factors, or sides with ``sizes``) whose
            flipped view is computed by the official code but discarded
            (VOC: ``[1.0]``; COCO: none).
        storage_factor: COCO averages the logits at
            ``int(f · H) × int(f · W)`` (``f = 0.2``) and upsamples the mean
            to (H, W); ``None`` averages at (H, W) (VOC).
        crf: ``DenseCRF`` config, or ``None``.
    """

    def __init__(self,
                 module: dict,
                 scales: Sequence[float] = (1.0, 0.7, 1.2, 1.5),
                 base_size: Optional[int] = None,
                 sizes: Optional[Sequence[Union[int, Sequence[int]]]] = None,
                 flip: bool = True,
                 drop_flip_scales: Sequence[float] = (),
                 storage_factor: Optional[float] = None,
                 crf: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None):
        super().__init__(module=module, data_preprocessor=data_preprocessor)
        if sizes is not None:
            keys = [tuple(s) if isinstance(s, (list, tuple)) else (s, s)
                    for s in sizes]
            self.view_sizes = [(int(h), int(w)) for h, w in keys]
            self.view_keys = [s if not isinstance(s, (list, tuple)) else
                              tuple(s) for s in sizes]
        else:
            if base_size is None:
                test_size = getattr(self.module.data_preprocessor,
                                    'test_size', None)
                if test_size is None:
                    raise ValueError(
                        'ExCELTTAModel needs base_size, sizes, or a module '
                        'data preprocessor with test_size')
                base_size = test_size[0]
            # int(base · s) exactly as the official script computes it
            self.view_sizes = [(int(base_size * s), int(base_size * s))
                               for s in scales]
            self.view_keys = list(scales)
        if not self.view_sizes:
            raise ValueError('ExCELTTAModel needs at least one scale')
        unknown = [s for s in drop_flip_scales if s not in self.view_keys]
        if unknown:
            raise ValueError(f'drop_flip_scales {unknown} are not among the '
                             f'scales {self.view_keys}')
        self.flip = flip
        self.drop_flip_scales = tuple(drop_flip_scales)
        if storage_factor is not None and not 0 < storage_factor <= 1:
            raise ValueError(
                f'storage_factor must be in (0, 1], got {storage_factor}')
        self.storage_factor = storage_factor
        self.crf = MODELS.build(crf) if crf is not None else None

    # ------------------------------------------------------------------
    def view_logits(self, images: Sequence[Tensor]) -> List[List[Tensor]]:
        """Grid logits of every scale: ``out[j][i]`` (2 or 1, C, h, w) for
        scale j and image i (row 1 = the flipped view). Images of one scale
        run as one batch (eval mode: the batch does not change a view)."""
        pre = self.module.data_preprocessor
        out = []
        for size in self.view_sizes:
            batch = []
            for img in images:
                x = pre.resize(img, size)
                batch.append(x)
                if self.flip:
                    batch.append(x.flip(-1))
            logits = self.module.seg_logits_grid(torch.stack(batch))
            n = 2 if self.flip else 1
            out.append([logits[n * i:n * i + n] for i in range(len(images))])
        return out

    def merge_image(self, views: Sequence[Tensor],
                    ori_hw: Tuple[int, int]) -> Dict[str, Tensor]:
        """Official merge of one image's views (see module docstring).

        ``views[j]``: (2 or 1, C, h, w) grid logits of scale j. Returns
        ``per_scale`` (S, C, h', w') at the averaging size, ``mean_logits``
        at that size and ``logits`` (C, H, W) at the original size.
        """
        ori_hw = tuple(int(v) for v in ori_hw)
        avg_hw = ori_hw
        if self.storage_factor is not None:
            avg_hw = (int(self.storage_factor * ori_hw[0]),
                      int(self.storage_factor * ori_hw[1]))
            if min(avg_hw) < 1:
                raise ValueError(
                    f'image of {ori_hw} is too small for storage_factor '
                    f'{self.storage_factor}')
        ac = self.module.align_corners
        per_scale = []
        for key, v in zip(self.view_keys, views):
            use_flip = (self.flip and v.shape[0] == 2
                        and key not in self.drop_flip_scales)
            per_scale.append(fuse_scale(v, avg_hw, use_flip, ac))
        mean = mean_over_scales(per_scale)
        logits = mean
        if avg_hw != ori_hw:
            logits = F.interpolate(
                mean[None], size=ori_hw, mode='bilinear',
                align_corners=ac)[0]
        return dict(
            per_scale=torch.stack(per_scale), mean_logits=mean, logits=logits)

    def read_image(self, data_sample) -> 'mmcv.np.ndarray':
        """The original uint8 RGB image of a sample, for the CRF."""
        path = data_sample.metainfo.get('img_path')
        image = mmcv.imread(path, channel_order='rgb') if path else None
        if image is None:
            raise FileNotFoundError(
                f'CRF needs the original image: cannot read {path}')
        return image

    @torch.no_grad()
    def test_step(self, data: dict) -> SampleList:
        """Predict a batch of un-resized images with the official protocol.

        ``data`` comes from the ``tta_pipeline`` (no ``TestTimeAug``: the
        views are made here). Sets ``seg_logits`` (the merged logits at the
        original size), ``raw_pred_sem_seg`` (their argmax) and
        ``pred_sem_seg`` (the CRF label when a CRF is configured).
        """
        if isinstance(data['inputs'][0], (list, tuple)):
            raise TypeError(
                'ExCELTTAModel makes its scales and flips itself: use a '
                'tta_pipeline without TestTimeAug (load image + labels + '
                'PackWSSSInputs)')
        pre = self.module.data_preprocessor
        data = pre.cast_data(data)
        images = pre.normalize(data['inputs'])
        samples = data['data_samples']
        views = self.view_logits(images)
        for i, ds in enumerate(samples):
            ori = tuple(ds.metainfo.get('ori_shape', images[i].shape[-2:]))
            merged = self.merge_image([v[i] for v in views], ori[:2])
            image = self.read_image(ds) if self.crf is not None else None
            out = self.finish(merged['logits'], image)
            ds.set_data({
                'seg_logits': PixelData(data=merged['logits']),
                'raw_pred_sem_seg': PixelData(data=out['raw'][None]),
                'pred_sem_seg': PixelData(data=out['pred'][None])
            })
        return samples

    def finish(self, logits: Tensor, image=None) -> Dict[str, Tensor]:
        """Merged logits (C, H, W) → ``softmax``, ``raw`` (argmax of the
        logits), with a CRF ``crf_q`` (its posterior on the uint8 RGB
        ``image``) and ``pred`` (CRF label, else ``raw``)."""
        raw = logits.argmax(0)
        out = dict(raw=raw, pred=raw, softmax=logits.softmax(0))
        if self.crf is not None:
            if image is None:
                raise ValueError('the CRF needs the original image')
            q = self.crf([image], [out['softmax'].float().cpu()])[0]
            out['crf_q'] = q
            out['pred'] = q.argmax(0).to(raw)
        return out

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Unused: :meth:`test_step` merges the views itself."""
        raise NotImplementedError(
            'ExCELTTAModel merges in test_step; merge_preds is not used')

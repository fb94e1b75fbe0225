# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Test-time augmentation of ExCEL (EXCEL.md §9.2): ms + flip + dense CRF.

mmseg's ``SegTTAModel`` averages the *softmax* of every augmented view. The
official protocol averages the *logits* (each view resized to the original
image), then takes one softmax and runs dense CRF on the original uint8 RGB
image. ``ExCELTTAModel`` does that; the views come from mmseg's
``TestTimeAug`` transform (``tta_pipeline`` in the config), so any scales and
flips can be configured.
"""
from typing import List, Optional

import mmcv
import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors.seg_tta import SegTTAModel
from mmseg.registry import MODELS
from mmseg.utils import SampleList


@MODELS.register_module()
class ExCELTTAModel(SegTTAModel):
    """Mean of logits over views → softmax → optional dense CRF → argmax.

    Args:
        module: the segmentor config (set by ``tools/test.py --tta``).
        crf: ``DenseCRF`` config, or None for no CRF.
        drop_flip_at_scale: the official VOC script computes the flipped view
            at scale 1.0 and discards it (§11 #19). Give the view's image
            shape (h, w) here to reproduce that; None keeps every view.
    """

    def __init__(self,
                 module: dict,
                 crf: Optional[dict] = None,
                 drop_flip_at_scale: Optional[tuple] = None,
                 **kwargs):
        super().__init__(module=module, **kwargs)
        self.crf = MODELS.build(crf) if crf is not None else None
        self.drop_flip_at_scale = (
            tuple(drop_flip_at_scale) if drop_flip_at_scale else None)

    def _keep(self, data_sample) -> bool:
        if self.drop_flip_at_scale is None:
            return True
        flipped = data_sample.metainfo.get('flip', False)
        shape = tuple(data_sample.metainfo.get('img_shape', ()))[:2]
        return not (flipped and shape == self.drop_flip_at_scale)

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Merge the views of each image (logit mean, softmax, CRF)."""
        predictions = []
        for views in data_samples_list:
            kept = [v for v in views if self._keep(v)]
            logits = torch.stack([v.seg_logits.data for v in kept]).mean(0)
            prob = logits.softmax(dim=0)
            if self.crf is not None:
                image = mmcv.imread(views[0].img_path, channel_order='rgb')
                if image is None:
                    raise FileNotFoundError(
                        f'CRF needs the original image: cannot read '
                        f'{views[0].img_path}')
                prob = self.crf([image], [prob.float().cpu()])[0].to(prob)
            merged = views[0]
            merged.set_data({
                'seg_logits': PixelData(data=prob),
                'pred_sem_seg': PixelData(data=prob.argmax(dim=0)[None])
            })
            predictions.append(merged)
        return predictions

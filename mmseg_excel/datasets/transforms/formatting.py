# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Pack WSSS samples: image-level labels as a data field of the sample."""
import numpy as np
import torch
from mmcv.transforms import to_tensor
from mmengine.structures import PixelData

from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackWSSSInputs(PackSegInputs):
    """``PackSegInputs`` plus ``gt_cls_label`` and ``pseudo_sem_seg``.

    Data fields of the packed ``SegDataSample``:

    - ``gt_cls_label``: float32 tensor ``(num_classes - 1,)``, multi-hot over
      foreground classes (from ``LoadImageLevelLabels``); always present;
    - ``gt_sem_seg``: only if a ``gt_seg_map`` is left in the results
      (validation/test); training pipelines drop it;
    - ``pseudo_sem_seg``: only if ``LoadPseudoSegMap`` loaded a pseudo mask.

    Args:
        meta_keys (tuple[str]): As ``PackSegInputs``, plus ``img_id`` and
            ``img_box`` (image region inside a padded crop, if padded by
            ``RandomOffsetPad``).
    """

    def __init__(
        self,
        meta_keys=('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
                   'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                   'reduce_zero_label', 'img_id')
    ) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack image, labels and masks."""
        if 'gt_cls_label' not in results:
            raise KeyError(
                f'{results.get("img_path", "<sample>")}: no gt_cls_label; add '
                'LoadImageLevelLabels to the pipeline before PackWSSSInputs')
        packed = super().transform(results)
        data_sample = packed['data_samples']
        label = np.asarray(results['gt_cls_label'], dtype=np.float32)
        data_sample.set_data(dict(gt_cls_label=torch.from_numpy(label.copy())))
        pseudo = results.get('pseudo_seg_map')
        if pseudo is not None:
            data = to_tensor(
                np.ascontiguousarray(pseudo)[None].astype(np.int64))
            data_sample.set_data(dict(pseudo_sem_seg=PixelData(data=data)))
        return packed

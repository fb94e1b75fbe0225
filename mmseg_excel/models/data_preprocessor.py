# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Data preprocessor of the WSSS evaluation protocol (docs/evaluation.md).

The official ExCEL scripts normalise the uint8 image at its original size and
then resize the *normalised float tensor* to the square network size
(bilinear, ``align_corners=False``); no uint8 image is ever resized at test
time. mmseg's usual way (a ``Resize`` transform in the test pipeline) resizes
the uint8 image and rounds it, which moves every map a little.
:class:`WSSSDataPreProcessor` reproduces the official order: in test mode
each image is normalised (in float64, stored float32, as numpy does it in the
official dataset) and resized to ``test_size`` on the device, so images of
different original sizes can share a batch. Training batches are handled
exactly as by mmseg's ``SegDataPreProcessor``.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class WSSSDataPreProcessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` + the square test-time resize of ExCEL.

    Args:
        test_size: (h, w) every test image is resized to after
            normalisation (ExCEL: 320 × 320, the training crop); ``None``
            keeps the images as they come (then a batch must share one size,
            as in mmseg).
        **kwargs: ``SegDataPreProcessor`` arguments (mean, std,
            bgr_to_rgb, size_divisor, …).
    """

    def __init__(self,
                 test_size: Optional[Sequence[int]] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        # float64 copies of the exact config values (the float32 buffers of
        # SegDataPreProcessor round 123.675 & co.)
        mean, std = kwargs.get('mean'), kwargs.get('std')
        self._mean64 = (None if mean is None else torch.tensor(
            mean, dtype=torch.float64).view(-1, 1, 1))
        self._std64 = (None if std is None else torch.tensor(
            std, dtype=torch.float64).view(-1, 1, 1))
        if test_size is not None:
            test_size = tuple(int(s) for s in test_size)
            if len(test_size) != 2 or min(test_size) < 1:
                raise ValueError(
                    f'test_size must be (h, w) > 0, got {test_size}')
        self.test_size = test_size

    def normalize(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        """Channel conversion + mean/std of each (3, H, W) image, computed
        in float64 and returned in float32 at the image's own size."""
        out = []
        for img in inputs:
            if self.channel_conversion and img.size(0) == 3:
                img = img[[2, 1, 0], ...]
            x = img.double()
            if self._enable_normalize:
                x = (x - self._mean64.to(x.device)) / self._std64.to(x.device)
            out.append(x.float())
        return out

    @staticmethod
    def resize(image: Tensor, size: Tuple[int, int]) -> Tensor:
        """Bilinear, ``align_corners=False`` resize of (…, 3, H, W) floats
        (the official ``F.interpolate`` of the normalised image)."""
        squeeze = image.dim() == 3
        x = image[None] if squeeze else image
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(
                x, size=tuple(size), mode='bilinear', align_corners=False)
        return x[0] if squeeze else x

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Training: as ``SegDataPreProcessor``. Test with ``test_size``:
        normalise each image, resize it to ``test_size``, stack; the
        samples' ``img_shape``/``pad_shape`` become ``test_size`` while
        ``ori_shape`` keeps the original size."""
        if training or self.test_size is None:
            return super().forward(data, training)
        data = self.cast_data(data)  # type: ignore
        samples = data.get('data_samples', None)
        imgs = [
            self.resize(x, self.test_size)
            for x in self.normalize(data['inputs'])
        ]
        if samples is not None:
            for ds in samples:
                ds.set_metainfo(
                    dict(
                        img_shape=self.test_size,
                        pad_shape=self.test_size,
                        padding_size=[0, 0, 0, 0]))
        return dict(inputs=torch.stack(imgs, 0), data_samples=samples)

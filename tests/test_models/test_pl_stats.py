# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCEL's logged pseudo-label statistics: foreground ratio, LVC flag and
the batch pseudo-label mIoU when the training samples carry masks."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_excel.models.segmentors.excel import ExCEL


def _sample(gt=None):
    ds = SegDataSample()
    if gt is not None:
        ds.gt_sem_seg = PixelData(data=gt[None])
    return ds


def test_pl_miou_against_masks():
    me = SimpleNamespace(num_classes=3)
    pseudo = torch.tensor([[[0, 1, 1, 255]], [[2, 2, 0, 0]]])
    gt = torch.tensor([[[0, 1, 0, 1]], [[2, 2, 0, 255]]])
    s = ExCEL._pl_stats(me, pseudo, True, [_sample(gt[0]), _sample(gt[1])])
    # kept pixels (neither 255): pairs (gt, pl) = (0,0) (1,1) (0,1) (2,2)
    # (2,2) (0,0) → IoU bg 2/3, class 1 1/2, class 2 2/2
    assert s['pl_miou'].item() == pytest.approx(100 * (2 / 3 + 1 / 2 + 1) / 3)
    assert s['pl_fg_ratio'].item() == pytest.approx(4 / 8)
    assert s['pl_lvc'].item() == 1.0


def test_no_masks_no_miou():
    me = SimpleNamespace(num_classes=3)
    pseudo = torch.zeros(2, 1, 4, dtype=torch.long)
    s = ExCEL._pl_stats(me, pseudo, False, [_sample(), _sample()])
    assert 'pl_miou' not in s and s['pl_lvc'].item() == 0.0

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Scores of pseudo labels and predictions (docs/evaluation.md).

:class:`WSSSIoUMetric` is mmseg's ``IoUMetric`` (confusion counts over all
pixels, ground-truth 255 ignored, mIoU = plain mean of the per-class IoUs)
with what WSSS reports next to it: per-class precision, recall and the
"confusion ratio" FP / TP of the training-free pseudo-label report, and a
choice of which predicted field of the data samples is scored
(``pred_sem_seg``, or e.g. ``pred_pseudo_sem_seg`` for the pseudo labels of
a validation pass, so that pseudo-label mIoU is logged next to seg mIoU).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS
from prettytable import PrettyTable


@METRICS.register_module()
class WSSSIoUMetric(IoUMetric):
    """IoU / precision / recall / confusion ratio of one predicted field.

    Args:
        pred_key: data-sample field scored against ``gt_sem_seg``.
        prefix: metric name prefix (e.g. ``'pseudo'``: ``pseudo/mIoU``).
        **kwargs: ``IoUMetric`` arguments (``ignore_index``, …).
    """

    def __init__(self,
                 pred_key: str = 'pred_sem_seg',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        kwargs.setdefault('iou_metrics', ['mIoU', 'mFscore'])
        super().__init__(prefix=prefix, **kwargs)
        self.pred_key = pred_key
        self.last_table: Optional[Dict[str, np.ndarray]] = None

    def add(self, pred: torch.Tensor, label: torch.Tensor) -> None:
        """Accumulate one (H, W) prediction against its (H, W) label."""
        if tuple(pred.shape) != tuple(label.shape):
            raise ValueError(f'prediction {tuple(pred.shape)} and ground '
                             f'truth {tuple(label.shape)} sizes differ')
        num_classes = len(self.dataset_meta['classes'])
        self.results.append(
            self.intersect_and_union(pred.to(label.device), label,
                                     num_classes, self.ignore_index))

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score ``pred_key`` of every sample that has ``gt_sem_seg``."""
        for ds in data_samples:
            if 'gt_sem_seg' not in ds:
                continue
            if self.pred_key not in ds:
                raise KeyError(
                    f'WSSSIoUMetric scores `{self.pred_key}` but a data '
                    f'sample has only {sorted(ds.keys())}')
            pred = ds[self.pred_key]['data'].squeeze()
            label = ds['gt_sem_seg']['data'].squeeze().to(pred)
            self.add(pred, label)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """mIoU, mPrecision, mRecall, mConfusion (FP/TP) and the per-class
        table (logged and kept in :attr:`last_table`)."""
        logger: MMLogger = MMLogger.get_current_instance()
        inter, union, pred_area, label_area = (
            sum(r) for r in zip(*results))
        ret = self.total_area_to_metrics(inter, union, pred_area, label_area,
                                         self.metrics, self.nan_to_num,
                                         self.beta)
        tp = inter.double()
        fp = (pred_area - inter).double()
        ret['Confusion'] = (fp / tp).numpy()
        metrics = OrderedDict()
        for key, val in ret.items():
            val = np.asarray(val, dtype=np.float64)
            if key == 'aAcc':
                metrics['aAcc'] = float(np.round(np.nanmean(val) * 100, 2))
            elif key == 'Confusion':
                finite = val[np.isfinite(val)]
                metrics['mConfusion'] = float(
                    np.round(finite.mean(), 4)) if finite.size else float(
                        'nan')
            else:
                metrics['m' + key] = float(np.round(np.nanmean(val) * 100, 2))
        names = list(self.dataset_meta['classes'])
        table = OrderedDict(Class=names)
        for key in ('IoU', 'Precision', 'Recall', 'Confusion'):
            if key in ret:
                v = np.asarray(ret[key], dtype=np.float64)
                table[key] = (np.round(v, 4) if key == 'Confusion' else
                              np.round(v * 100, 2))
        self.last_table = table
        pt = PrettyTable()
        for key, val in table.items():
            pt.add_column(key, list(val))
        print_log(f'per class results ({self.pred_key}):', logger)
        print_log('\n' + pt.get_string(), logger=logger)
        return dict(metrics)


def table_rows(table: Dict[str, np.ndarray]) -> List[str]:
    """The per-class table as plain text lines (for tools' stdout)."""
    pt = PrettyTable()
    for key, val in table.items():
        pt.add_column(key, list(val))
    return pt.get_string().splitlines()

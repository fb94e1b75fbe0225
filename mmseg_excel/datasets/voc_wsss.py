# Copyright (c) mmseg-excel contributors. All rights reserved.
"""PASCAL VOC 2012 + SBD aug for WSSS (EXCEL.md §8.1, §8.2).

Layout under ``data_root`` (``data/VOCdevkit/VOC2012``)::

    JPEGImages/<id>.jpg
    SegmentationClassAug/<id>.png        # SBD-augmented masks (train_aug+val)
    ImageSets/Segmentation/{train_aug,train,val}.txt   # 10 582 / 1 464 / 1 449
"""
import os.path as osp
from typing import Optional, Tuple

from mmseg.registry import DATASETS
from .wsss_dataset import BaseWSSSDataset

VOC_CLASSES = ('background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle',
               'bus', 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog',
               'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
               'train', 'tvmonitor')


def voc_colormap(num: int) -> list:
    """The PASCAL VOC colour map (bit-interleaved RGB) for ``num`` labels."""
    palette = []
    for label in range(num):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette.append([r, g, b])
    return palette


@DATASETS.register_module()
class VOCWSSSDataset(BaseWSSSDataset):
    """PASCAL VOC 2012 (+SBD aug) with image-level labels.

    21 classes incl. background; masks ``SegmentationClassAug/<id>.png`` with
    ``255`` = ignore. See :class:`BaseWSSSDataset` for the arguments
    (``ann_file``, ``cls_labels_file``, ``pseudo_seg_map_dir``, ...).
    """
    METAINFO = dict(classes=VOC_CLASSES, palette=voc_colormap(21))

    def __init__(self,
                 ann_file: str = 'ImageSets/Segmentation/train_aug.txt',
                 data_prefix: dict = dict(
                     img_path='JPEGImages',
                     seg_map_path='SegmentationClassAug'),
                 **kwargs) -> None:
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def sample_paths(self, img_id: str) -> Tuple[str, Optional[str]]:
        """``JPEGImages/<id>.jpg`` and ``SegmentationClassAug/<id>.png``."""
        img = osp.join(self.data_prefix['img_path'], img_id + self.img_suffix)
        seg_dir = self.data_prefix.get('seg_map_path')
        seg = (
            osp.join(seg_dir, img_id +
                     self.seg_map_suffix) if seg_dir else None)
        return img, seg


@DATASETS.register_module()
class VOCLayoutWSSSDataset(VOCWSSSDataset):
    """Any WSSS dataset in the VOC folder layout with its own classes.

    For synthetic or custom datasets (e.g. the Toy World): the classes
    (background first) and optionally the palette come from ``metainfo``;
    ``img_suffix`` may be changed (``'.png'``).

    Args:
        metainfo (dict): Must hold ``classes``; ``palette`` defaults to the
            VOC colour map.
        **kwargs: As :class:`VOCWSSSDataset`.
    """
    METAINFO: dict = dict()

    def __init__(self, metainfo: Optional[dict] = None, **kwargs) -> None:
        if not metainfo or not metainfo.get('classes'):
            raise ValueError(
                'VOCLayoutWSSSDataset needs metainfo=dict(classes=[...]) '
                '(background first)')
        metainfo = dict(metainfo)
        metainfo.setdefault('palette', voc_colormap(len(metainfo['classes'])))
        super().__init__(metainfo=metainfo, **kwargs)

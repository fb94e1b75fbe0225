# Copyright (c) mmseg-excel contributors. All rights reserved.
"""PASCAL VOC 2012 + SBD aug for WSSS (docs/methods/excel.md §8.1, §8.2).

Layout under ``data_root`` (``data/VOCdevkit/VOC2012``)::

    JPEGImages/<id>.jpg
    Annotations/<id>.xml                 # object names: the official labels
    SegmentationClassAug/<id>.png        # SBD-augmented masks (train_aug+val)
    ImageSets/Segmentation/{train_aug,train,val}.txt   # 10 582 / 1 464 / 1 449
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple

from mmseg.registry import DATASETS
from .image_labels import read_voc_xml_labels
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
    (``ann_file``, ``cls_labels_file``, ``label_source``,
    ``pseudo_seg_map_dir``, ...).

    The official image-level labels (``label_source='xml'``, the default
    when ``xml_dir`` exists and no ``cls_labels_file`` is given) are the
    distinct object names of ``<xml_dir>/<id>.xml``, difficult objects
    included; a class present in the mask only as void, or an object too
    small to be drawn, still gets its label.

    Args:
        xml_dir (str): Folder of the VOC XML annotations, relative to
            ``data_root``. Defaults to 'Annotations'.
    """
    METAINFO = dict(classes=VOC_CLASSES, palette=voc_colormap(21))
    OFFICIAL_LABEL_SOURCE = 'xml'

    def __init__(self,
                 ann_file: str = 'ImageSets/Segmentation/train_aug.txt',
                 data_prefix: dict = dict(
                     img_path='JPEGImages',
                     seg_map_path='SegmentationClassAug'),
                 xml_dir: str = 'Annotations',
                 **kwargs) -> None:
        self.xml_dir = self._join_root(kwargs.get('data_root'), xml_dir)
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def official_labels_available(self) -> bool:
        """``xml_dir`` exists (local files only)."""
        return self.backend_args is None and osp.isdir(self.xml_dir)

    def official_labels_location(self) -> str:
        return f'VOC annotations {self.xml_dir}'

    def read_official_labels(self, ids: List[str]) -> Dict[str, List[int]]:
        """Object names of ``<xml_dir>/<id>.xml`` as class ids."""
        if not osp.isdir(self.xml_dir):
            raise FileNotFoundError(
                f"label_source='xml': VOC annotation folder not found: "
                f'{self.xml_dir}')
        classes = self.label_classes
        return {
            i: read_voc_xml_labels(osp.join(self.xml_dir, i + '.xml'), classes)
            for i in ids
        }

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
        super().__init__(
            metainfo=custom_metainfo(metainfo, type(self).__name__), **kwargs)


def custom_metainfo(metainfo: Optional[dict], owner: str) -> dict:
    """``metainfo`` of a dataset with its own classes: ``classes`` required
    (background first), ``palette`` defaulting to the VOC colour map."""
    if not metainfo or not metainfo.get('classes'):
        raise ValueError(f'{owner} needs metainfo=dict(classes=[...]) '
                         '(background first)')
    metainfo = dict(metainfo)
    metainfo.setdefault('palette', voc_colormap(len(metainfo['classes'])))
    return metainfo

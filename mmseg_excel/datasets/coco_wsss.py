# Copyright (c) mmseg-excel contributors. All rights reserved.
"""MS COCO 2014 in VOC-style masks for WSSS (docs/methods/excel.md §8.1, §8.2).

Layout under ``data_root`` (``data/coco2014``)::

    JPEGImages/train/COCO_train2014_<12 digits>.jpg
    JPEGImages/val/COCO_val2014_<12 digits>.jpg
    SegmentationClass/train/<12 digits>.png    # 0 bg, 1..80, 255 ignore
    SegmentationClass/val/<12 digits>.png
    ImageSets/{train,val}.txt                  # full names, e.g.
                                               # COCO_train2014_000000000009

The split files list full image names (82 081 train images with at least one
annotation, 40 137 val); the ``train``/``val`` sub-folder and the 12-digit mask
name are read from each name. Grey-scale COCO images are loaded as 3 channels
by ``LoadImageFromFile`` (as the official ``robust_read_image``).
"""
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmseg.registry import DATASETS
from .image_labels import label_list_has_ids, read_coco_label_list
from .voc_wsss import voc_colormap
from .wsss_dataset import BaseWSSSDataset

# COCO's 80 categories in category-id order with the VOC spellings used by
# ExCEL/CLIP-ES (docs/methods/excel.md §2.1-2.2): motorbike, aeroplane, sofa,
# pottedplant,
# diningtable, tvmonitor. These are the class-name keys of the text banks.
COCO_WSSS_CLASSES = (
    'background', 'person', 'bicycle', 'car', 'motorbike', 'aeroplane', 'bus',
    'train', 'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'sofa', 'pottedplant', 'bed',
    'diningtable', 'toilet', 'tvmonitor', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush')

COCO_NAME_PATTERN = re.compile(r'^COCO_(train|val)2014_(\d{12})$')


@DATASETS.register_module()
class COCOWSSSDataset(BaseWSSSDataset):
    """MS COCO 2014 (VOC-style masks) with image-level labels.

    81 classes incl. background. See :class:`BaseWSSSDataset` for the
    arguments (``ann_file``, ``cls_labels_file``, ``label_source``,
    ``pseudo_seg_map_dir``, ...). Image ids are full names
    ``COCO_{train,val}2014_<12 digits>``.

    The official image-level labels (``label_source='list'``) are the
    0-based category indices listed after each name in CLIP-ES's
    ``coco14/train.txt`` (computed from the instance annotations, so a class
    hidden when the masks were rendered keeps its label). ``'auto'`` uses
    them when ``label_list_file`` is given, or when the split file itself
    carries the indices.

    Args:
        label_list_file (str | list[str], optional): The label list(s),
            relative to ``data_root`` (several are merged, e.g. the train and
            val lists). Defaults to the split file when its lines carry class
            indices.
    """
    METAINFO = dict(classes=COCO_WSSS_CLASSES, palette=voc_colormap(81))
    OFFICIAL_LABEL_SOURCE = 'list'

    def __init__(self,
                 ann_file: str = 'ImageSets/train.txt',
                 data_prefix: dict = dict(
                     img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 label_list_file: Union[str, Sequence[str], None] = None,
                 **kwargs) -> None:
        if isinstance(label_list_file, str):
            label_list_file = [label_list_file]
        self.label_list_file = [
            self._join_root(kwargs.get('data_root'), p)
            for p in label_list_file
        ] if label_list_file else None
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def _label_lists(self) -> List[str]:
        """The label list files in use (empty: there is none)."""
        if self.label_list_file:
            return list(self.label_list_file)
        if self.backend_args is None and osp.isfile(self.ann_file) and \
                label_list_has_ids(self.ann_file):
            return [self.ann_file]
        return []

    def official_labels_available(self) -> bool:
        """A label list is given, or the split file carries indices."""
        paths = self._label_lists()
        return bool(paths) and all(osp.isfile(p) for p in paths)

    def official_labels_location(self) -> str:
        return 'COCO label list ' + ', '.join(self._label_lists())

    def read_official_labels(self, ids: List[str]) -> Dict[str, List[int]]:
        """Class ids of ``ids`` from the label list(s)."""
        paths = self._label_lists()
        if not paths:
            raise FileNotFoundError(
                "label_source='list': no COCO label list: set "
                f'label_list_file (the split file {self.ann_file} lists no '
                'class indices)')
        out: Dict[str, List[int]] = {}
        for path in paths:
            out.update(
                read_coco_label_list(
                    path, len(self.label_classes),
                    img_suffix=self.img_suffix))
        return out

    def sample_paths(self, img_id: str) -> Tuple[str, Optional[str]]:
        """``JPEGImages/<subset>/<id>.jpg``, ``SegmentationClass/<subset>/
        <12 digits>.png``."""
        match = COCO_NAME_PATTERN.match(img_id)
        if match is None:
            raise ValueError(
                f'{self.ann_file}: {img_id!r} is not a COCO 2014 image name '
                '(expected COCO_train2014_<12 digits> or '
                'COCO_val2014_<12 digits>)')
        subset, digits = match.groups()
        img = osp.join(self.data_prefix['img_path'], subset,
                       img_id + self.img_suffix)
        seg_dir = self.data_prefix.get('seg_map_path')
        seg = (
            osp.join(seg_dir, subset, digits +
                     self.seg_map_suffix) if seg_dir else None)
        return img, seg

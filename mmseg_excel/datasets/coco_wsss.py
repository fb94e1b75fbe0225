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
from .coco_label_convention import COCO_UNUSED_IDS, check_mask_convention
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



def _coco_id_classes() -> Tuple[str, ...]:
    names, used = ['background'], iter(COCO_WSSS_CLASSES[1:])
    for cat_id in range(1, 91):
        names.append(COCO_UNUSED_IDS.get(cat_id) or next(used))
    return tuple(names)


#: 91 names indexed by COCO category id (0 background; the ten unused ids
#: keep COCO's names), VOC spellings for the 80 categories (the text-bank
#: keys): the list of the official WeakCLIP COCO config, for masks in the
#: category-id convention (:mod:`.coco_label_convention`)
COCO_ID_CLASSES = _coco_id_classes()

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
        convention_check_masks (int): With ``pseudo_seg_map_dir``, read up
            to this many pseudo masks (spread over the split) until one shows
            its label convention (contiguous ids or COCO category ids,
            :mod:`mmseg_excel.datasets.coco_label_convention`); a convention
            that does not match the class list is an error naming the mask.
            0 skips the check. Defaults to 500.
    """
    METAINFO = dict(classes=COCO_WSSS_CLASSES, palette=voc_colormap(81))
    OFFICIAL_LABEL_SOURCE = 'list'

    def __init__(self,
                 ann_file: str = 'ImageSets/train.txt',
                 data_prefix: dict = dict(
                     img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 label_list_file: Union[str, Sequence[str], None] = None,
                 convention_check_masks: int = 500,
                 **kwargs) -> None:
        self.convention_check_masks = convention_check_masks
        if isinstance(label_list_file, str):
            label_list_file = [label_list_file]
        self.label_list_file = [
            self._join_root(kwargs.get('data_root'), p)
            for p in label_list_file
        ] if label_list_file else None
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        """The data infos, after checking the pseudo masks' convention."""
        data_list = super().load_data_list()
        n = self.convention_check_masks
        if (self.pseudo_seg_map_dir is not None and n > 0 and data_list
                and self.check_files and self.backend_args is None):
            step = max(1, len(data_list) // n)
            paths = [d['pseudo_seg_map_path'] for d in data_list[::step][:n]]
            check_mask_convention(
                paths, len(self.METAINFO['classes']),
                f'{self.__class__.__name__} pseudo masks '
                f'{self.pseudo_seg_map_dir}', getattr(self, 'ignore_index', 255))
        return data_list

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


@DATASETS.register_module()
class COCOIdWSSSDataset(COCOWSSSDataset):
    """COCO 2014 whose masks hold COCO category ids (91 classes: 0
    background, ids 1..90 incl. the ten unused ones), the convention the
    official WeakCLIP COCO config's name list assumes. Pseudo masks of the
    other (contiguous) convention are refused. The CLIP-ES label lists
    index the 80 categories, so image-level labels come from a labels file
    or the masks (no ``'list'`` source)."""
    METAINFO = dict(classes=COCO_ID_CLASSES, palette=voc_colormap(91))
    OFFICIAL_LABEL_SOURCE = None

    def official_labels_available(self) -> bool:
        return False

# Copyright (c) mmseg-excel contributors. All rights reserved.
from . import transforms  # noqa: F401
from .coco_label_convention import (check_mask_convention,
                                    mask_label_convention)
from .coco_wsss import (COCO_ID_CLASSES, COCO_WSSS_CLASSES,
                        COCOIdWSSSDataset, COCOWSSSDataset)
from .folder_wsss import WSSSFolderDataset
from .image_labels import (class_ids_from_mask, multi_hot,
                           read_coco_label_list, read_labels_file,
                           read_named_labels,
                           read_onehot_npy, read_voc_xml_labels,
                           write_labels_file, write_onehot_npy)
from .voc_wsss import (VOC_CLASSES, VOCLayoutWSSSDataset, VOCWSSSDataset,
                       voc_colormap)
from .wsss_dataset import BaseWSSSDataset

__all__ = [
    'BaseWSSSDataset', 'VOCWSSSDataset', 'VOCLayoutWSSSDataset',
    'COCOWSSSDataset', 'COCOIdWSSSDataset', 'COCO_ID_CLASSES',
    'check_mask_convention', 'mask_label_convention', 'VOC_CLASSES', 'COCO_WSSS_CLASSES', 'voc_colormap',
    'class_ids_from_mask', 'multi_hot', 'read_labels_file',
    'write_labels_file', 'read_onehot_npy', 'write_onehot_npy',
    'read_voc_xml_labels', 'read_coco_label_list', 'read_named_labels',
    'WSSSFolderDataset'
]

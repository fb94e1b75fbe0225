# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Write the image-level labels of PASCAL VOC 2012 (+SBD aug).

Usage::

    python tools/dataset_converters/voc_image_labels.py data/VOCdevkit/VOC2012 \
        --split train_aug val --out data/VOCdevkit/VOC2012/cls_labels.json

Reads ``SegmentationClassAug/<id>.png`` of every id listed in
``ImageSets/Segmentation/<split>.txt`` and writes the JSON labels file
``{"format": ..., "classes": [...], "labels": {id: [class ids]}}``; class ids
are mask values 1..20 (background 0 and ignore 255 are never listed). Use it
with ``cls_labels_file`` of ``VOCWSSSDataset``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from image_labels_common import build_parser, run  # noqa: E402

SPLIT_DIR = osp.join('ImageSets', 'Segmentation')


def main(argv=None) -> str:
    """Entry point."""
    parser = build_parser(__doc__.strip().splitlines()[0],
                          ['train_aug', 'val'], SPLIT_DIR)
    parser.add_argument(
        '--seg-dir',
        default='SegmentationClassAug',
        help='mask folder under the root')
    args = parser.parse_args(argv)
    from mmseg_excel.datasets import VOCWSSSDataset
    return run(
        VOCWSSSDataset,
        args,
        SPLIT_DIR,
        data_prefix=dict(img_path='JPEGImages', seg_map_path=args.seg_dir))


if __name__ == '__main__':
    main()

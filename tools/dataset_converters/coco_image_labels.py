# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Write the image-level labels of COCO 2014 (VOC-style masks).

Usage::

    python tools/dataset_converters/coco_image_labels.py data/coco2014 \
        --split train --label-list coco14/train.txt \
        --out data/coco2014/cls_labels_onehot.npy

Labels of every image listed in ``ImageSets/<split>.txt`` (full names
``COCO_train2014_<12 digits>``), by default (``--source auto``) the official
ones where a label list exists: the 0-based category indices after each name
in CLIP-ES's ``coco14/train.txt`` (``--label-list``, relative to the root, or
the split file itself when it carries them); otherwise, or with ``--source
mask``, derived from ``SegmentationClass/{train,val}/<12 digits>.png``. When
both exist the number of images whose labels differ is printed. Writes the
JSON labels file ``{"format": ..., "classes": [...], "labels": {image name:
[class ids]}}`` (class ids = mask values 1..80), or the official
``cls_labels_onehot.npy`` when ``--out`` ends with ``.npy``. Use it with
``cls_labels_file`` of ``COCOWSSSDataset``.

The VOC-style masks themselves are not created here: they are rendered from
the COCO 2014 instance annotations (value ``k`` = the ``k``-th of the 80
categories in category-id order, 0 = background, 255 = ignore) by the data
preparation of the official ExCEL/ToCo code bases; pass ``--seg-dir`` if they
live elsewhere under the root.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from image_labels_common import build_parser, run  # noqa: E402

SPLIT_DIR = 'ImageSets'


def main(argv=None) -> str:
    """Entry point."""
    parser = build_parser(__doc__.strip().splitlines()[0], ['train', 'val'],
                          SPLIT_DIR, 'list')
    parser.add_argument(
        '--seg-dir',
        default='SegmentationClass',
        help='mask folder under root')
    parser.add_argument(
        '--label-list',
        nargs='+',
        default=None,
        help='COCO label list file(s) ("<name> <0-based ids>" per line, as '
        'CLIP-ES coco14/train.txt), relative to the root or absolute')
    args = parser.parse_args(argv)
    from mmseg_excel.datasets import COCOWSSSDataset
    return run(
        COCOWSSSDataset,
        args,
        SPLIT_DIR,
        data_prefix=dict(img_path='JPEGImages', seg_map_path=args.seg_dir),
        label_list_file=args.label_list)


if __name__ == '__main__':
    main()

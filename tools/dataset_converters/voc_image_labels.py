# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Write the image-level labels of PASCAL VOC 2012 (+SBD aug).

Usage::

    python tools/dataset_converters/voc_image_labels.py data/VOCdevkit/VOC2012 \
        --split train_aug val --out data/VOCdevkit/VOC2012/cls_labels_onehot.npy

Labels of every id listed in ``ImageSets/Segmentation/<split>.txt``, by
default (``--source auto``) the official ones: the distinct object names of
``Annotations/<id>.xml`` (difficult objects included); ``--source mask``
derives them from ``SegmentationClassAug/<id>.png`` instead. When both exist
the number of images whose labels differ is printed. Writes the JSON labels
file ``{"format": ..., "classes": [...], "labels": {id: [class ids]}}``
(class ids 1..20), or the official ``cls_labels_onehot.npy`` when ``--out``
ends with ``.npy``. Use it with ``cls_labels_file`` of ``VOCWSSSDataset``.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from image_labels_common import build_parser, run  # noqa: E402

SPLIT_DIR = osp.join('ImageSets', 'Segmentation')


def main(argv=None) -> str:
    """Entry point."""
    parser = build_parser(__doc__.strip().splitlines()[0],
                          ['train_aug', 'val'], SPLIT_DIR, 'xml')
    parser.add_argument(
        '--seg-dir',
        default='SegmentationClassAug',
        help='mask folder under the root')
    parser.add_argument(
        '--xml-dir',
        default='Annotations',
        help='VOC XML annotation folder under the root')
    args = parser.parse_args(argv)
    from mmseg_excel.datasets import VOCWSSSDataset
    return run(
        VOCWSSSDataset,
        args,
        SPLIT_DIR,
        data_prefix=dict(img_path='JPEGImages', seg_map_path=args.seg_dir),
        xml_dir=args.xml_dir)


if __name__ == '__main__':
    main()

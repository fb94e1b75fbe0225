# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Shared CLI of the image-level label converters (EXCEL.md §8.1).

Reads the ground-truth masks of the listed splits and writes the labels file
of :mod:`mmseg_excel.datasets.image_labels` (JSON
``{"format", "classes", "labels": {image id: [class ids]}}``). The WSSS
datasets read it through ``cls_labels_file`` so that training never opens a
mask.
"""
import argparse
import os.path as osp
from functools import partial
from typing import Dict, List, Sequence, Tuple

import mmengine

from mmseg_excel.datasets import write_labels_file
from mmseg_excel.datasets.image_labels import class_ids_from_mask
from mmseg_excel.datasets.transforms.image_labels import read_class_mask


def _labels_of(item: Tuple[str, str], num_classes: int,
               ignore_index: int) -> Tuple[str, List[int]]:
    """(image id, mask path) -> (image id, foreground class ids)."""
    img_id, path = item
    mask = read_class_mask(path)
    return img_id, class_ids_from_mask(mask, num_classes, ignore_index, path)


def collect_labels(dataset_cls,
                   root: str,
                   split_files: Dict[str, str],
                   nproc: int = 1,
                   ignore_index: int = 255,
                   **dataset_kwargs) -> Dict[str, List[int]]:
    """Derive the labels of every image listed in ``split_files``.

    Args:
        dataset_cls: ``VOCWSSSDataset`` or ``COCOWSSSDataset`` (only its
            layout is used: which mask belongs to which image id).
        root (str): Dataset root.
        split_files (dict[str, str]): split name -> split file (relative
            to ``root`` or absolute).
        nproc (int): Worker processes. Defaults to 1.
        ignore_index (int): Ignored mask value. Defaults to 255.
        **dataset_kwargs: Extra dataset arguments (``data_prefix``, ...).

    Returns:
        dict[str, list[int]]: image id -> sorted foreground class ids.
    """
    items: Dict[str, str] = {}
    num_classes = len(dataset_cls.METAINFO['classes'])
    for split, ann_file in split_files.items():
        dataset = dataset_cls(
            data_root=root,
            ann_file=ann_file,
            check_files=False,
            lazy_init=True,
            **dataset_kwargs)
        for info in dataset.load_data_list():
            if info['seg_map_path'] is None:
                raise ValueError(f'{split}: no mask folder configured')
            items[info['img_id']] = info['seg_map_path']
    tasks = sorted(items.items())
    func = partial(
        _labels_of, num_classes=num_classes, ignore_index=ignore_index)
    if nproc > 1:
        results = mmengine.track_parallel_progress(func, tasks, nproc)
    else:
        results = mmengine.track_progress(func, tasks)
    return dict(results)


def build_parser(description: str, default_splits: Sequence[str],
                 split_dir: str) -> argparse.ArgumentParser:
    """Arguments shared by the VOC and COCO converters."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('root', help='dataset root')
    parser.add_argument(
        '--split',
        nargs='+',
        default=list(default_splits),
        help='split names (files <root>/' + split_dir + '/<split>.txt) or '
        'paths of split files')
    parser.add_argument(
        '--out',
        default=None,
        help='output labels file (default: <root>/cls_labels.json)')
    parser.add_argument(
        '--nproc', type=int, default=1, help='worker processes')
    parser.add_argument(
        '--ignore-index', type=int, default=255, help='ignored mask value')
    return parser


def split_files_of(root: str, splits: Sequence[str],
                   split_dir: str) -> Dict[str, str]:
    """Resolve split names to split files (paths are kept as given)."""
    out = {}
    for split in splits:
        if split.endswith('.txt') or osp.sep in split:
            out[osp.splitext(osp.basename(split))[0]] = osp.abspath(split)
        else:
            out[split] = osp.join(split_dir, f'{split}.txt')
    return out


def run(dataset_cls, args: argparse.Namespace, split_dir: str,
        **dataset_kwargs) -> str:
    """Collect the labels and write the file; returns its path."""
    if not osp.isdir(args.root):
        raise FileNotFoundError(f'dataset root not found: {args.root}')
    split_files = split_files_of(args.root, args.split, split_dir)
    labels = collect_labels(
        dataset_cls,
        args.root,
        split_files,
        nproc=args.nproc,
        ignore_index=args.ignore_index,
        **dataset_kwargs)
    out = args.out or osp.join(args.root, 'cls_labels.json')
    write_labels_file(out, labels, classes=dataset_cls.METAINFO['classes'])
    n_empty = sum(1 for v in labels.values() if not v)
    print(f'\nwrote image-level labels of {len(labels)} images '
          f'({n_empty} without a foreground class) to {out}')
    return out

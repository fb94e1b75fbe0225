# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Shared CLI of the image-level label converters.

Collects the image-level labels of the listed splits from the chosen source
(``--source``): the ground-truth masks, or the dataset's official source (VOC:
the ``Annotations/*.xml`` object names; COCO: the CLIP-ES label list), by
default the official one where its files exist. When both sources can be
read, it reports how many images' labels differ between them. Writes the JSON
labels file of :mod:`mmseg_excel.datasets.image_labels`, or the official
``cls_labels_onehot.npy`` when ``--out`` ends with ``.npy``; the WSSS
datasets read either through ``cls_labels_file``.
"""
import argparse
import os.path as osp
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import mmengine

from mmseg_excel.datasets import write_labels_file, write_onehot_npy
from mmseg_excel.datasets.image_labels import (check_labels_cover,
                                               class_ids_from_mask)
from mmseg_excel.datasets.transforms.image_labels import read_class_mask


def _labels_of(item: Tuple[str, str], num_classes: int,
               ignore_index: int) -> Tuple[str, List[int]]:
    """(image id, mask path) -> (image id, foreground class ids)."""
    img_id, path = item
    mask = read_class_mask(path)
    return img_id, class_ids_from_mask(mask, num_classes, ignore_index, path)


def _split_datasets(dataset_cls, root: str, split_files: Dict[str, str],
                    **dataset_kwargs) -> Dict[str, object]:
    """One lazily initialised dataset per split (layout and sources only)."""
    return {
        split: dataset_cls(
            data_root=root,
            ann_file=ann_file,
            check_files=False,
            lazy_init=True,
            label_source='mask',
            **dataset_kwargs)
        for split, ann_file in split_files.items()
    }


def mask_labels(items: Dict[str, str], num_classes: int, nproc: int = 1,
                ignore_index: int = 255) -> Dict[str, List[int]]:
    """Foreground class ids of each image's mask (image id -> mask path)."""
    tasks = sorted(items.items())
    func = partial(
        _labels_of, num_classes=num_classes, ignore_index=ignore_index)
    if nproc > 1:
        results = mmengine.track_parallel_progress(func, tasks, nproc)
    else:
        results = mmengine.track_progress(func, tasks)
    return dict(results)


def collect_labels(dataset_cls,
                   root: str,
                   split_files: Dict[str, str],
                   nproc: int = 1,
                   ignore_index: int = 255,
                   source: str = 'mask',
                   compare: bool = True,
                   **dataset_kwargs) -> Dict[str, List[int]]:
    """Collect the labels of every image listed in ``split_files``.

    Args:
        dataset_cls: ``VOCWSSSDataset`` or ``COCOWSSSDataset`` (its layout
            and official label source are used).
        root (str): Dataset root.
        split_files (dict[str, str]): split name -> split file (relative
            to ``root`` or absolute).
        nproc (int): Worker processes for the masks. Defaults to 1.
        ignore_index (int): Ignored mask value. Defaults to 255.
        source (str): ``'mask'``, the official source name
            (``dataset_cls.OFFICIAL_LABEL_SOURCE``) or ``'auto'`` (official
            per split where its files exist, else mask). Defaults to 'mask'.
        compare (bool): Also read the other source where it exists and
            print how many images' labels differ. Defaults to True.
        **dataset_kwargs: Extra dataset arguments (``data_prefix``, ...).

    Returns:
        dict[str, list[int]]: image id -> sorted foreground class ids.
    """
    official = dataset_cls.OFFICIAL_LABEL_SOURCE
    if source not in ('auto', 'mask', official):
        raise ValueError(f'--source must be auto, mask or {official}, '
                         f'got {source!r}')
    num_classes = len(dataset_cls.METAINFO['classes'])
    out: Dict[str, List[int]] = {}
    for split, ds in _split_datasets(dataset_cls, root, split_files,
                                     **dataset_kwargs).items():
        infos = ds.load_data_list()
        ids = [info['img_id'] for info in infos]
        available = ds.official_labels_available()
        chosen = source if source != 'auto' else (
            official if available else 'mask')
        labels_official: Optional[Dict[str, List[int]]] = None
        if chosen == official or (compare and available):
            read = ds.read_official_labels(ids)
            check_labels_cover(read, ids, ds.official_labels_location(),
                               ds.ann_file)
            labels_official = {i: read[i] for i in ids}
        items = {}
        for info in infos:
            if info['seg_map_path'] is None:
                raise ValueError(f'{split}: no mask folder configured')
            items[info['img_id']] = info['seg_map_path']
        labels_mask: Optional[Dict[str, List[int]]] = None
        if chosen == 'mask':
            labels_mask = mask_labels(items, num_classes, nproc, ignore_index)
        elif compare:
            absent = [p for p in items.values() if not osp.isfile(p)]
            if absent:
                print(f'{split}: not compared with the masks, '
                      f'{len(absent)} mask(s) missing (first: {absent[0]})')
            else:
                labels_mask = mask_labels(items, num_classes, nproc,
                                          ignore_index)
        labels = labels_official if chosen == official else labels_mask
        print(f'\n{split}: {len(ids)} images, labels from {chosen}'
              + (f' ({ds.official_labels_location()})'
                 if chosen == official else ''))
        if labels_official is not None and labels_mask is not None:
            report_differences(split, labels_official, labels_mask, official)
        out.update(labels)
    return out


def report_differences(split: str, labels_a: Dict[str, List[int]],
                       labels_b: Dict[str, List[int]], name_a: str,
                       name_b: str = 'mask', show: int = 3) -> int:
    """Print how many images' labels differ between two sources; returns
    the count."""
    differ = sorted(k for k in labels_a if labels_a[k] != labels_b.get(k))
    print(f'{split}: {len(differ)} of {len(labels_a)} images have labels '
          f'that differ between {name_a} and {name_b}')
    for k in differ[:show]:
        print(f'    {k}: {name_a} {labels_a[k]} vs {name_b} {labels_b.get(k)}')
    return len(differ)


def build_parser(description: str, default_splits: Sequence[str],
                 split_dir: str,
                 official_source: str) -> argparse.ArgumentParser:
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
        help='output labels file (default: <root>/cls_labels.json); a name '
        'ending with .npy writes the official cls_labels_onehot.npy layout')
    parser.add_argument(
        '--source',
        choices=['auto', 'mask', official_source],
        default='auto',
        help=f'label source: the masks, {official_source} (the official '
        f'labels) or auto ({official_source} where its files exist, else '
        'mask)')
    parser.add_argument(
        '--no-compare',
        action='store_true',
        help='do not read the other source to count differing images')
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
        source=args.source,
        compare=not args.no_compare,
        **dataset_kwargs)
    out = args.out or osp.join(args.root, 'cls_labels.json')
    classes = dataset_cls.METAINFO['classes']
    if out.endswith('.npy'):
        write_onehot_npy(out, labels, num_classes=len(classes))
    else:
        write_labels_file(out, labels, classes=classes)
    n_empty = sum(1 for v in labels.values() if not v)
    print(f'\nwrote image-level labels of {len(labels)} images '
          f'({n_empty} without a foreground class) to {out}')
    return out

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Generate the Toy World dataset in the PASCAL VOC folder layout.

Output (``--out``)::

    JPEGImages/<id>.png              RGB, lossless PNG (img_suffix='.png')
    SegmentationClassAug/<id>.png    palette PNG, 0 = background, 1..K classes
    ImageSets/Segmentation/{train,val,test}.txt
    captions.json                    id -> list of captions
    cls_labels.json                  id -> sorted class ids present (1..K)
    meta.json                        classes, backgrounds, palette, seeds, size

Scene ``i`` of split ``s`` is drawn from ``scene_rng(seed, s, i)``; the test
split uses ``--test-seed`` (default ``seed + 1000``), so it shares no random
stream with train/val or with the CLIP pretraining. The same arguments give
byte-identical files.

``--layout folder`` writes it as a custom dataset instead
(docs/custom_dataset.md): ``images/<id>.png``, ``masks/<id>.png``,
``labels_{train,val,test}.csv`` (``image,labels`` with class names joined by
``;``), ``classes.txt`` and ``meta.json``.

Tiny world for CI::

    python tools/toy_world/make_dataset.py --out /tmp/toy \
        --num-train 8 --num-val 4 --num-test 4 --size 64
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List

import numpy as np
from PIL import Image

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _bootstrap import import_toy_world  # noqa: E402

tw = import_toy_world()

GENERATOR_VERSION = 1
CAPTIONS_PER_IMAGE = 3


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default='data/toy_world')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--test-seed', type=int, default=None,
                   help='seed of the test split (default: seed + 1000)')
    p.add_argument('--size', type=int, default=96, help='image side (px)')
    p.add_argument('--num-train', type=int, default=2000)
    p.add_argument('--num-val', type=int, default=500)
    p.add_argument('--num-test', type=int, default=500)
    p.add_argument(
        '--layout',
        choices=['voc', 'folder'],
        default='voc',
        help='VOC folder layout (default) or the custom-dataset folder '
        'layout of docs/custom_dataset.md')
    return p.parse_args(argv)


def save_png(array: np.ndarray, path: str, palette=None) -> None:
    """Write an RGB or palette PNG (no metadata, deterministic bytes)."""
    if palette is None:
        img = Image.fromarray(array, mode='RGB')
    else:
        img = Image.fromarray(array, mode='P')
        flat = np.zeros((256, 3), np.uint8)
        flat[:len(palette)] = palette
        img.putpalette(flat.reshape(-1).tolist())
    img.save(path, format='PNG', optimize=False, compress_level=6)


def generate(out: str, seed: int, test_seed: int, size: int,
             counts: Dict[str, int]) -> Dict[str, List[str]]:
    """Render every split into ``out``; return split -> list of ids."""
    if test_seed == seed:
        raise ValueError('the test split must use a seed different from '
                         f'the training seed (both {seed})')
    for sub in ('JPEGImages', 'SegmentationClassAug',
                osp.join('ImageSets', 'Segmentation')):
        os.makedirs(osp.join(out, sub), exist_ok=True)
    palette = tw.toy_palette()
    from mmengine.utils import ProgressBar
    total = sum(counts.values())
    bar = ProgressBar(total, file=sys.stdout) if total else None
    captions: Dict[str, List[str]] = {}
    labels: Dict[str, List[int]] = {}
    ids: Dict[str, List[str]] = {}
    for split, n in counts.items():
        split_seed = test_seed if split == 'test' else seed
        ids[split] = []
        for i in range(n):
            rng = tw.scene_rng(split_seed, split, i)
            scene = tw.render_scene(rng, size)
            sid = f'{split}_{i:06d}'
            save_png(scene.image, osp.join(out, 'JPEGImages', sid + '.png'))
            save_png(scene.mask,
                     osp.join(out, 'SegmentationClassAug', sid + '.png'),
                     palette)
            captions[sid] = [
                tw.make_caption(rng, scene) for _ in range(CAPTIONS_PER_IMAGE)
            ]
            labels[sid] = scene.labels
            ids[split].append(sid)
            if bar is not None:
                bar.update()
        with open(osp.join(out, 'ImageSets', 'Segmentation', split + '.txt'),
                  'w') as f:
            f.write(''.join(s + '\n' for s in ids[split]))
    if bar is not None:
        sys.stdout.write('\n')
    meta = dict(
        name='toy_world',
        generator_version=GENERATOR_VERSION,
        classes=['background'] + list(tw.CLASS_NAMES),
        backgrounds=list(tw.BACKGROUNDS),
        palette=palette.tolist(),
        seed=seed,
        test_seed=test_seed,
        size=size,
        counts=counts,
        img_suffix='.png',
        seg_map_suffix='.png')
    for fname, obj in (('captions.json', captions),
                       ('cls_labels.json', labels), ('meta.json', meta)):
        with open(osp.join(out, fname), 'w') as f:
            json.dump(obj, f, indent=1, sort_keys=True)
            f.write('\n')
    return ids


def to_folder_layout(out: str, ids: Dict[str, List[str]]) -> None:
    """Rewrite a rendered VOC-layout world as a custom folder dataset."""
    import csv
    import shutil
    with open(osp.join(out, 'cls_labels.json')) as f:
        labels = json.load(f)
    with open(osp.join(out, 'meta.json')) as f:
        classes = json.load(f)['classes']
    for src, dst in (('JPEGImages', 'images'),
                     ('SegmentationClassAug', 'masks')):
        shutil.rmtree(osp.join(out, dst), ignore_errors=True)
        os.replace(osp.join(out, src), osp.join(out, dst))
    for split, names in ids.items():
        with open(osp.join(out, f'labels_{split}.csv'), 'w',
                  newline='') as f:
            w = csv.writer(f)
            w.writerow(['image', 'labels'])
            for sid in names:
                w.writerow([
                    sid + '.png', ';'.join(classes[c] for c in labels[sid])
                ])
    with open(osp.join(out, 'classes.txt'), 'w') as f:
        f.write(''.join(c + '\n' for c in classes))
    shutil.rmtree(osp.join(out, 'ImageSets'))
    os.remove(osp.join(out, 'cls_labels.json'))


def main(argv=None) -> None:
    """Entry point."""
    args = parse_args(argv)
    test_seed = args.seed + 1000 if args.test_seed is None else args.test_seed
    counts = dict(train=args.num_train, val=args.num_val, test=args.num_test)
    for k, v in counts.items():
        if v < 0:
            raise ValueError(f'--num-{k} must be >= 0, got {v}')
    ids = generate(args.out, args.seed, test_seed, args.size, counts)
    if args.layout == 'folder':
        to_folder_layout(args.out, ids)
    print(f'wrote {sum(counts.values())} images ({counts}) to {args.out}')


if __name__ == '__main__':
    main()

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Where do ExCEL's Toy-World pseudo labels go wrong? Stage by stage.

Runs the training-free ExCEL pipeline of a toy config on a split with exact
masks and scores each stage's labels (argmax of ``[(1 − max)^p; maps]``):

* ``raw maps``: the patch-text maps of the present classes (SVC + TSE +
  feature surgery), min–max, upsampled — no CAA, no PAR;
* ``+ CAA``: after the class-aware attention affinity;
* ``+ CAA + PAR``: the shipped pseudo label.

Per stage: mIoU, the foreground fraction of the labels against that of the
true masks, and the share of (image, present class) pairs whose map is
INVERTED — its mean inside the class's true mask is below its mean over the
true background (so the background region gets the class and the object
becomes background). The inverted share is also split by the background
stuff of the scene (re-rendered from the world's seeds: grass, sky, water,
brick, sand). A picture per image (image | ground truth | raw map | CAA map
| label) goes to ``--out`` with ``--num-vis``.

Example::

    python tools/toy_world/diagnose_maps.py \
        configs/toy_world/excel_toy-clip_1xb8-1k_toy-world-96x96.py \
        --data data/toy_world --split test --out work_dirs/toy_world/diagnosis
"""
import argparse
import json
import os
import os.path as osp
import sys
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
import torch
from PIL import Image

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

STAGES = ('raw maps', '+ CAA', '+ CAA + PAR')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--data', default='data/toy_world')
    p.add_argument('--split', default='test')
    p.add_argument('--out', default='work_dirs/toy_world/diagnosis')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--max-images', type=int, default=None)
    p.add_argument('--num-vis', type=int, default=8)
    return p.parse_args(argv)


def scene_backgrounds(data: str, split: str, n: int) -> List[List[str]]:
    """The background stuff of each scene, re-rendered from the world's
    seeds (the generator is deterministic)."""
    from _bootstrap import import_toy_world
    tw = import_toy_world()
    with open(osp.join(data, 'meta.json')) as f:
        meta = json.load(f)
    seed = meta['test_seed'] if split == 'test' else meta['seed']
    return [tw.render_scene(tw.scene_rng(seed, split, i),
                            meta['size']).backgrounds for i in range(n)]


def _heat(m: np.ndarray) -> np.ndarray:
    m = (np.clip(m, 0, 1) * 255).astype(np.uint8)
    return np.stack([m, np.zeros_like(m), 255 - m], -1)


def main(argv: Optional[List[str]] = None) -> Dict:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401
    from mmseg.registry import MODELS
    from mmseg_excel.datasets import voc_colormap
    from mmseg_excel.evaluation import WSSSIoUMetric

    cfg = Config.fromfile(args.config)
    loader_cfg = cfg[f'{args.split}_dataloader'].copy()
    loader_cfg['dataset'] = dict(
        loader_cfg['dataset'], data_root=args.data,
        ann_file=f'ImageSets/Segmentation/{args.split}.txt',
        **({} if args.max_images is None else dict(indices=args.max_images)))
    loader_cfg.update(batch_size=args.batch_size, num_workers=0,
                      persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=False))
    loader = Runner.build_dataloader(loader_cfg)
    model = MODELS.build(cfg.model).eval()
    pl = model.pseudo_labeler
    metrics = {s: WSSSIoUMetric(prefix=s) for s in STAGES}
    for m in metrics.values():
        m.dataset_meta = loader.dataset.metainfo
    fg_pred = {s: [] for s in STAGES}
    fg_true: List[float] = []
    inverted = {s: [] for s in STAGES[:2]}  # per (image, class)
    pair_bg: List[str] = []
    n_images = len(loader.dataset)
    bgs = scene_backgrounds(args.data, args.split, n_images)
    os.makedirs(args.out, exist_ok=True)
    colors = np.asarray(voc_colormap(256), np.uint8)
    vis, idx = [], 0
    for batch in loader:
        data = model.data_preprocessor(batch, False)
        with torch.no_grad():
            feats = model.extract_feat(data['inputs'])
            cams = model.compute_cams(feats.image_features)
            cls = model._cls_labels(data['data_samples'])
            pl.use_affinity = False
            raw = pl.refine(cams, feats.attn_weights, cls, feats.hw)
            pl.use_affinity = True
            caa = pl.refine(cams, feats.attn_weights, cls, feats.hw)
        for j, ds in enumerate(data['data_samples']):
            gt = ds.gt_sem_seg.data[0].long()
            size = tuple(gt.shape)
            k = int(caa['valid'][j].sum())
            ci = caa['class_idx'][j, :k]
            img = data['inputs'][j:j + 1]
            labels, maps = {}, {}
            for stage, r in (('raw maps', raw), ('+ CAA', caa)):
                wb = pl.with_background(r['refined'][j:j + 1, :k],
                                        torch.ones(1, k, dtype=torch.bool),
                                        size)[0]
                keys = torch.cat([ci.new_zeros(1), ci + 1])
                labels[stage] = keys[wb.argmax(0)]
                maps[stage] = wb[1:]
                if stage == '+ CAA':
                    labels['+ CAA + PAR'] = keys[pl.par(
                        img, wb[None])[0].argmax(0)] if pl.use_par else \
                        labels[stage]
            fg_true.append(float((gt > 0).float().mean()))
            for s in STAGES:
                metrics[s].add(labels[s], gt)
                fg_pred[s].append(float((labels[s] > 0).float().mean()))
            for c_pos, c in enumerate(ci.tolist()):
                inside = gt == c + 1
                outside = gt == 0
                if not inside.any() or not outside.any():
                    continue
                for s in inverted:
                    m = maps[s][c_pos]
                    inverted[s].append(
                        bool(m[inside].mean() < m[outside].mean()))
                pair_bg.append('+'.join(sorted(bgs[idx])))
            if len(vis) < args.num_vis:
                rgb = np.asarray(Image.open(ds.img_path).convert('RGB'))
                row = [rgb, colors[gt.numpy().astype(np.uint8)]]
                for s in ('raw maps', '+ CAA'):
                    m = maps[s].max(0)[0].numpy() if k else np.zeros(size)
                    row.append(_heat(m))
                row.append(colors[labels['+ CAA + PAR'].numpy().astype(
                    np.uint8)])
                vis.append(np.concatenate(row, 1))
            idx += 1
    res = dict(images=idx, true_fg=float(np.mean(fg_true)), stages={})
    print(f'{idx} images of {args.split}; true foreground '
          f'{100 * res["true_fg"]:.1f} % of the pixels')
    print(f'{"stage":<14}{"mIoU":>7}{"fg %":>7}{"inverted %":>12}')
    for s in STAGES:
        m = metrics[s].compute_metrics(metrics[s].results)
        inv = inverted.get(s)
        row = dict(mIoU=float(m['mIoU']),
                   fg=float(np.mean(fg_pred[s])),
                   inverted=None if inv is None else float(np.mean(inv)))
        res['stages'][s] = row
        inv_s = '-' if inv is None else f'{100 * row["inverted"]:.1f}'
        print(f'{s:<14}{row["mIoU"]:>7.1f}{100 * row["fg"]:>7.1f}'
              f'{inv_s:>12}')
    by_bg = defaultdict(list)
    for b, v in zip(pair_bg, inverted['raw maps']):
        by_bg[b].append(v)
    res['inverted_by_background'] = {
        b: dict(pairs=len(v), inverted=float(np.mean(v)))
        for b, v in sorted(by_bg.items())}
    print('raw maps inverted by background: ' + ', '.join(
        f'{b} {100 * d["inverted"]:.0f} % ({d["pairs"]})'
        for b, d in res['inverted_by_background'].items()))
    if vis:
        path = osp.join(args.out, f'stages_{args.split}.png')
        Image.fromarray(np.concatenate(vis, 0)).save(path)
        print(f'figure: {path} (image | ground truth | raw map | CAA map | '
              'pseudo label)')
        res['figure'] = path
    with open(osp.join(args.out, f'diagnosis_{args.split}.json'), 'w') as f:
        json.dump(res, f, indent=1)
    return res


if __name__ == '__main__':
    main()

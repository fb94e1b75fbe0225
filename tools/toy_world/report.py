# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Toy-World report: pseudo-label and trained-model mIoU of every method.

For each method config under ``configs/toy_world/`` it

1. generates training-free pseudo labels on the test split with the frozen
   toy CLIP and scores them (``tools/generate_pseudo_labels.py``);
2. trains the config through ``tools/train.py`` unless a checkpoint exists
   (``--eval-only``: never trains; uses the work-dir checkpoint or the one
   shipped in ``mmseg_excel/data/toy_world_models/``);
3. evaluates the trained model on the test split with mmseg's ``IoUMetric``;

then prints one table (pseudo-label mIoU, model mIoU, wall times), writes it
to ``<work-dir>/report.md`` / ``report.json`` and saves a figure grid of
predictions (image | ground truth | pseudo labels | ExCEL prediction).

``--seed N`` renders a fresh test split from seed N (``data/toy_world_test_
seed<N>``) and evaluates on it; with ``--eval-only`` nothing is retrained.

Examples::

    python tools/toy_world/report.py                      # everything
    python tools/toy_world/report.py --methods excel cam  # a subset
    python tools/toy_world/report.py --eval-only --seed 7
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

REPO = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tools'))
sys.path.insert(0, osp.join(REPO, 'tools', 'toy_world'))

CONFIG_DIR = osp.join(REPO, 'configs', 'toy_world')
SHIPPED_DIR = osp.join(REPO, 'mmseg_excel', 'data', 'toy_world_models')
SUFFIX = 'toy-clip_1xb8-1k_toy-world-96x96.py'

#: key -> (table label, config file, trainable)
METHODS: Dict[str, tuple] = {
    'excel': ('ExCEL (full)', 'excel_' + SUFFIX, True),
    'cam': ('CAM baseline (plain CLIP, raw maps)', 'cam-baseline_' + SUFFIX,
            True),
    'no_tse': ('ExCEL w/o TSE', 'excel-no-tse_' + SUFFIX, True),
    'no_svc': ('ExCEL w/o SVC (and LVC)', 'excel-no-svc_' + SUFFIX, True),
    'no_lvc': ('ExCEL w/o LVC', 'excel-no-lvc_' + SUFFIX, True),
    'clip_es': ('CLIP-ES (training-free)',
                'clip-es_toy-clip_training-free_toy-world-96x96.py', False),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--methods', nargs='+', default=list(METHODS),
                   choices=list(METHODS))
    p.add_argument('--data-root', default='data/toy_world',
                   help='toy world (generated with seed 0 if missing)')
    p.add_argument('--work-dir', default='work_dirs/toy_world',
                   help='<work-dir>/<method>/ per method (the quickstart '
                   'trains work_dirs/toy_world/excel)')
    p.add_argument('--eval-only', action='store_true',
                   help='never train: use existing or shipped checkpoints')
    p.add_argument('--seed', type=int, default=None,
                   help='render a fresh test split from this seed')
    p.add_argument('--num-test', type=int, default=500,
                   help='images of the fresh test split (--seed)')
    p.add_argument('--device', default=None)
    p.add_argument('--num-figure', type=int, default=6,
                   help='rows of the figure grid')
    p.add_argument('--export', action='store_true',
                   help='write weights-only checkpoints of the trained '
                   f'models to {osp.relpath(SHIPPED_DIR, REPO)}/<method>.pth')
    p.add_argument('--train-args', nargs=argparse.REMAINDER, default=[],
                   help='extra arguments for tools/train.py (last)')
    return p.parse_args(argv)


def ensure_world(root: str, seed: int = 0, test_seed: Optional[int] = None,
                 counts: Optional[Dict[str, int]] = None) -> None:
    """Render the toy world into ``root`` unless its meta.json exists."""
    if osp.isfile(osp.join(root, 'meta.json')):
        return
    import make_dataset
    argv = ['--out', root, '--seed', str(seed)]
    if test_seed is not None:
        argv += ['--test-seed', str(test_seed)]
    for split, n in (counts or {}).items():
        argv += [f'--num-{split}', str(n)]
    print(f'[report] rendering the toy world into {root}', flush=True)
    make_dataset.main(argv)


def find_checkpoint(work_dir: str, key: str) -> Optional[str]:
    """Newest checkpoint of a training run, else the shipped weights."""
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        path = open(last).read().strip()
        if osp.isfile(path):
            return path
    shipped = osp.join(SHIPPED_DIR, f'{key}.pth')
    return shipped if osp.isfile(shipped) else None


def export_weights(checkpoint: str, key: str) -> str:
    """Weights-only copy (state_dict + meta) for shipping."""
    import torch
    ck = torch.load(checkpoint, map_location='cpu', weights_only=False)
    os.makedirs(SHIPPED_DIR, exist_ok=True)
    out = osp.join(SHIPPED_DIR, f'{key}.pth')
    meta = dict(source=osp.relpath(checkpoint, REPO),
                iter=ck.get('meta', {}).get('iter'))
    torch.save(dict(state_dict=ck['state_dict'], meta=meta), out)
    return out


def train(config: str, work_dir: str, data_root: str,
          extra: List[str]) -> float:
    """``tools/train.py`` in a subprocess; returns the wall time (s)."""
    cmd = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir,
        '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}'
    ] + list(extra)
    print('[report] ' + ' '.join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd=REPO)
    return time.time() - t0


def pseudo_label_miou(config: str, out_dir: str, test_root: str,
                      device: Optional[str]) -> tuple:
    """Training-free pseudo labels of the test split; (mIoU, seconds)."""
    import generate_pseudo_labels
    argv = [
        config, '--out-dir', out_dir, '--split', 'test', '--num-vis', '0',
        '--cfg-options', f'test_dataloader.dataset.data_root={test_root}'
    ]
    if device:
        argv += ['--device', device]
    t0 = time.time()
    metrics = generate_pseudo_labels.main(argv)
    return float(metrics['mIoU']), time.time() - t0


def model_miou(config: str, checkpoint: str, work_dir: str, test_root: str,
               pred_dir: str) -> float:
    """Test-split mIoU of a trained checkpoint (mmengine Runner.test)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    cfg.test_dataloader.dataset.data_root = test_root
    cfg.test_evaluator = dict(
        type='IoUMetric', iou_metrics=['mIoU'], output_dir=pred_dir)
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook')
    cfg.custom_hooks = []
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    return float(metrics['mIoU'])


def save_figure(path: str, test_root: str, columns: Dict[str, str],
                rows: int) -> None:
    """Grid: image | ground truth | one column per label folder."""
    from mmseg_excel.toy_world import toy_palette
    palette = np.asarray(toy_palette(), np.uint8)
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = palette
    lut[255] = 255
    ids = open(osp.join(test_root, 'ImageSets', 'Segmentation',
                        'test.txt')).read().split()[:rows]
    grid = []
    for sid in ids:
        img = np.asarray(
            Image.open(osp.join(test_root, 'JPEGImages',
                                sid + '.png')).convert('RGB'))
        tiles = [img]
        folders = [osp.join(test_root, 'SegmentationClassAug')] + list(
            columns.values())
        for folder in folders:
            f = osp.join(folder, sid + '.png')
            if osp.isfile(f):
                lab = np.asarray(Image.open(f))
                tiles.append(lut[lab])
            else:
                tiles.append(np.zeros_like(img))
        row = np.concatenate(
            [np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255)
             for t in tiles], 1)
        grid.append(row)
    if grid:
        Image.fromarray(np.concatenate(grid, 0)).save(path)
        print('[report] figure columns: image | ground truth | ' +
              ' | '.join(columns) + f' -> {path}')


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Run the report; returns the table rows."""
    args = parse_args(argv)
    os.chdir(REPO)
    if not (args.eval_only and args.seed is not None):
        ensure_world(args.data_root)  # a fresh eval-only split needs no more
    test_root = args.data_root
    tag = 'test'
    if args.seed is not None:
        if args.seed == 0:
            raise ValueError('--seed 0 is the training seed; pick another')
        test_root = f'{args.data_root}_test_seed{args.seed}'
        tag = f'test_seed{args.seed}'
        ensure_world(test_root, seed=0, test_seed=args.seed,
                     counts=dict(train=0, val=0, test=args.num_test))
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401
    rows, fig_cols = [], {}
    from mmengine.utils import ProgressBar
    # methods done, with an ETA
    bar = ProgressBar(len(args.methods), file=sys.stdout)
    for key in args.methods:
        label, cfg_name, trainable = METHODS[key]
        config = osp.join(CONFIG_DIR, cfg_name)
        wd = osp.join(args.work_dir, key)
        row = dict(method=label, config=cfg_name)
        pl_dir = osp.join(wd, f'pseudo_labels_{tag}')
        row['pseudo_label_mIoU'], row['pseudo_label_s'] = pseudo_label_miou(
            config, pl_dir, test_root, args.device)
        fig_cols[f'{key} pseudo'] = pl_dir
        if trainable:
            ckpt = find_checkpoint(wd, key)
            if ckpt is None or not osp.isfile(ckpt):
                if args.eval_only:
                    raise FileNotFoundError(
                        f'--eval-only: no checkpoint for {key} in {wd} or '
                        f'{SHIPPED_DIR}; run without --eval-only first')
                row['train_s'] = train(config, wd, args.data_root,
                                       args.train_args)
                ckpt = find_checkpoint(wd, key)
            row['checkpoint'] = osp.relpath(ckpt, REPO)
            if args.export and not ckpt.startswith(SHIPPED_DIR):
                print(f'[report] exported {export_weights(ckpt, key)}')
            pred_dir = osp.join(wd, f'pred_{tag}')
            row['model_mIoU'] = model_miou(config, ckpt,
                                           osp.join(wd, f'eval_{tag}'),
                                           test_root, pred_dir)
            if key == 'excel':
                fig_cols['excel prediction'] = pred_dir
        rows.append(row)
        print(f'\n[report] {label}: {json.dumps(row)}', flush=True)
        bar.update()
        print(flush=True)
    table = format_table(rows, test_root)
    print(table)
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, f'report_{tag}.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.work_dir, f'report_{tag}.json'), 'w') as f:
        json.dump(rows, f, indent=1)
    save_figure(
        osp.join(args.work_dir, f'figure_{tag}.png'), test_root, fig_cols,
        args.num_figure)
    return rows


def format_table(rows: List[dict], test_root: str) -> str:
    """Markdown table of the report."""

    def fmt(v, spec='.1f'):
        return '–' if v is None else format(v, spec)

    lines = [
        f'Toy World test split: {test_root}', '',
        '| method | pseudo-label mIoU | model mIoU | train time (s) | '
        'pseudo-label time (s) |', '|---|---|---|---|---|'
    ]
    for r in rows:
        lines.append(f"| {r['method']} | {fmt(r['pseudo_label_mIoU'])} | "
                     f"{fmt(r.get('model_mIoU'))} | "
                     f"{fmt(r.get('train_s'), '.0f')} | "
                     f"{fmt(r['pseudo_label_s'], '.0f')} |")
    return '\n'.join(lines)


if __name__ == '__main__':
    main()

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Toy-World report: pseudo-label and trained-model mIoU of every method.

For each method config under ``configs/toy_world/`` it

1. generates training-free pseudo labels on the test split with the frozen
   toy CLIP and scores them (``tools/generate_pseudo_labels.py``);
2. trains the config through ``tools/train.py`` unless its work dir holds a
   checkpoint (``--eval-only``: never trains; uses the work-dir checkpoint
   or, for seed 0, the one shipped in ``mmseg_excel/data/toy_world_models/``);
3. evaluates the trained model on the test split with mmseg's ``IoUMetric``;

then prints one table (pseudo-label mIoU, model mIoU, wall times) and a
per-class IoU table (pseudo labels and models), writes them to
``<work-dir>/report_<split>.md`` / ``report_<split>.json`` and saves a figure
grid (image | ground truth | the pseudo labels of each method, the CAM
baseline's first | each trained model's prediction).

The rows: the CAM baseline (plain CLIP, raw patch-text maps), ExCEL and its
ablations (w/o TSE, SVC, LVC, CAA, PAR), CLIP-ES (training-free) and, as the
ceiling, the same ExCEL decoder and schedule trained on the exact masks
(``excel_gt``: ``ExCEL(mask_supervision=True)``).

``--seed N`` renders a fresh test split from seed N (``data/toy_world_test_
seed<N>``) and evaluates on it; with ``--eval-only`` nothing is retrained.

``--seeds S1 S2 ...`` (default 0 1 2; with ``--eval-only`` 0, the shipped
models) trains every trainable config once per training seed
(``randomness.seed=S``: decoder initialisation and data order; work dirs
``<work-dir>/<method>`` for seed 0 and ``<work-dir>/<method>_seed<S>``
otherwise). The table then gives the mean ± sample std of the model mIoU over
the seeds, and for each ablation the paired difference to the full ExCEL
(same seed) with a two-sided 95 % Student-t interval over the seeds. The
training-free pseudo labels do not depend on the training seed and are
scored once per config.

WeakCLIP (``--methods weakclip_cam weakclip_excel weakclip_gt``) refines
another method's masks: the training-free pseudo labels of the CAM baseline
or of ExCEL on the *train* split (or the exact masks, its ceiling) are its
training targets; the trained WeakCLIP's ms + flip + CRF masks of the train
split (``generate_pseudo_labels.py --checkpoint --crf``) are scored next to
the masks it started from, and an FCN-R18 (``fcn_r18-d8_…_toy-world-pl``,
from scratch) is trained on them and tested. ``supervised`` trains the same
FCN on the exact masks: the fully supervised ceiling of the segmenter.

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
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from scipy import stats

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
    'no_caa': ('ExCEL w/o CAA', 'excel-no-caa_' + SUFFIX, True),
    'no_par': ('ExCEL w/o PAR', 'excel-no-par_' + SUFFIX, True),
    'excel_gt': ('ExCEL decoder on the exact masks (fully supervised '
                 'ceiling)', 'excel-mask-supervised_' + SUFFIX, True),
    'clip_es': ('CLIP-ES (training-free)',
                'clip-es_toy-clip_training-free_toy-world-96x96.py', False),
}
#: WeakCLIP refinement rows: key -> (label, method whose train-split
#: pseudo labels it is trained on; None: the exact masks)
REFINERS: Dict[str, tuple] = {
    'weakclip_cam': ('WeakCLIP on CAM-baseline masks', 'cam'),
    'weakclip_excel': ('WeakCLIP on ExCEL masks', 'excel'),
    'weakclip_gt': ('WeakCLIP on the exact masks (its ceiling)', None),
}
#: rows trained on the exact masks: no (training-free) pseudo labels
NO_PSEUDO_LABELS = ('excel_gt', )
WEAKCLIP_CONFIG = 'weakclip_toy-clip_1xb8-2k_toy-world-96x96.py'
SEGMENTER_CONFIG = 'fcn_r18-d8_1xb8-1k_toy-world-pl-96x96.py'
SUPERVISED = 'supervised'
TRAIN_LIST = 'ImageSets/Segmentation/train.txt'
ALL_KEYS = list(METHODS) + list(REFINERS) + [SUPERVISED]
#: training seeds of a run without ``--seeds`` (``--eval-only``: seed 0)
DEFAULT_SEEDS = (0, 1, 2)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--methods', nargs='+', default=ALL_KEYS,
                   choices=ALL_KEYS)
    p.add_argument('--data-root', default='data/toy_world',
                   help='toy world (generated with seed 0 if missing)')
    p.add_argument('--work-dir', default='work_dirs/toy_world',
                   help='<work-dir>/<method>/ per method (the quickstart '
                   'trains work_dirs/toy_world/excel)')
    p.add_argument('--eval-only', action='store_true',
                   help='never train: use existing or shipped checkpoints')
    p.add_argument('--seed', type=int, default=None,
                   help='render a fresh test split from this seed')
    p.add_argument('--seeds', type=int, nargs='+', default=None,
                   help='training seeds (randomness.seed) of every trainable '
                   'config (default 0 1 2; with --eval-only 0, the shipped '
                   'models)')
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
    args = p.parse_args(argv)
    if args.seeds is None:
        args.seeds = [0] if args.eval_only else list(DEFAULT_SEEDS)
    return args


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


def find_checkpoint(work_dir: str, key: str,
                    shipped_ok: bool = True) -> Optional[str]:
    """Newest checkpoint of a training run, else (``shipped_ok``: seed 0)
    the shipped weights."""
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        path = open(last).read().strip()
        if osp.isfile(path):
            return path
    if not shipped_ok:
        return None
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


def seed_work_dir(work_dir: str, key: str, seed: int) -> str:
    """``<work-dir>/<key>`` for seed 0, ``<work-dir>/<key>_seed<S>`` else."""
    return osp.join(work_dir, key if seed == 0 else f'{key}_seed{seed}')


def train_command(config: str, work_dir: str, data_root: str,
                  extra: List[str], seed: int = 0,
                  options: Sequence[str] = ()) -> List[str]:
    """The ``tools/train.py`` command line of one training run
    (``options``: more ``--cfg-options`` items)."""
    return [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir,
        '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        f'randomness.seed={seed}'
    ] + list(options) + list(extra)


def train(config: str, work_dir: str, data_root: str,
          extra: List[str], seed: int = 0,
          options: Sequence[str] = ()) -> float:
    """``tools/train.py`` in a subprocess; returns the wall time (s)."""
    cmd = train_command(config, work_dir, data_root, extra, seed, options)
    print('[report] ' + ' '.join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd=REPO)
    return time.time() - t0


def pseudo_label_miou(config: str, out_dir: str, test_root: str,
                      device: Optional[str],
                      extra: Sequence[str] = ()) -> tuple:
    """Training-free pseudo labels of the test split (``extra``: more
    ``generate_pseudo_labels.py`` options, e.g. ``--ann-file`` of the train
    list, ``--checkpoint``, ``--crf``); (mIoU, seconds)."""
    import generate_pseudo_labels
    argv = [config, '--out-dir', out_dir, '--split', 'test', '--num-vis',
            '0'] + list(extra) + [
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


def per_class_iou(label_dir: str, test_root: str, split: str = 'test',
                  num_classes: Optional[int] = None) -> List[float]:
    """IoU (%) of every class, background first, of the label PNGs in
    ``label_dir`` against the exact masks of ``split`` (mmseg's
    ``IoUMetric`` arithmetic, summed over the images; NaN for a class absent
    from both). A missing label file is an error naming it."""
    import torch
    from mmseg.evaluation.metrics import IoUMetric
    from mmseg_excel.toy_world import CLASS_NAMES
    n = num_classes or len(CLASS_NAMES) + 1
    ids = open(osp.join(test_root, 'ImageSets', 'Segmentation',
                        f'{split}.txt')).read().split()
    totals = [torch.zeros(n, dtype=torch.float64) for _ in range(4)]
    for sid in ids:
        f = osp.join(label_dir, sid + '.png')
        if not osp.isfile(f):
            raise FileNotFoundError(f'label {f} missing for per-class IoU')
        pred = torch.from_numpy(np.asarray(Image.open(f), np.int64))
        gt = torch.from_numpy(np.asarray(Image.open(osp.join(
            test_root, 'SegmentationClassAug', sid + '.png')), np.int64))
        for t, a in zip(totals, IoUMetric.intersect_and_union(
                pred, gt, n, 255)):
            t += a.double()
    iou = totals[0] / totals[1]
    return [float(v) * 100 for v in iou]


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


#: ablation key -> the component it removes (paired against 'excel')
ABLATIONS: Dict[str, str] = {
    'no_tse': 'TSE',
    'no_svc': 'SVC (and LVC)',
    'no_lvc': 'LVC',
    'no_caa': 'CAA',
    'no_par': 'PAR',
}


def mean_std(values: List[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for one value)."""
    v = np.asarray(values, np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def paired_t_interval(full: List[float], ablated: List[float],
                      level: float = 0.95) -> dict:
    """Paired difference ``full - ablated`` over seeds with a two-sided
    Student-t interval (``lo``/``hi`` are None for fewer than 2 seeds)."""
    d = np.asarray(full, np.float64) - np.asarray(ablated, np.float64)
    if d.ndim != 1 or len(d) == 0:
        raise ValueError('need one value per seed in both lists')
    out = dict(mean=float(d.mean()), n=int(len(d)), lo=None, hi=None)
    if len(d) > 1:
        half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) *
                     d.std(ddof=1) / np.sqrt(len(d)))
        out.update(lo=out['mean'] - half, hi=out['mean'] + half)
    return out


def ablation_differences(rows: List[dict], methods: List[str],
                         seeds: List[int]) -> List[dict]:
    """Paired (same seed) model-mIoU difference of ExCEL minus each ablation
    that was run: what the removed component adds."""
    by_key = dict(zip(methods, rows))
    full = by_key.get('excel')
    out = []
    if full is None:
        return out
    for key, component in ABLATIONS.items():
        if key not in by_key:
            continue
        d = paired_t_interval(full['model_mIoU_seeds'],
                              by_key[key]['model_mIoU_seeds'])
        out.append(dict(component=component, ablation=key, seeds=seeds, **d))
    return out


def run_model_seed(args: argparse.Namespace, key: str, config: str,
                   seed: int, test_root: str, tag: str, row: dict,
                   fig_cols: Dict[str, str]) -> None:
    """Train (unless a checkpoint exists) and test one config at one seed;
    appends to ``row``'s per-seed lists."""
    wd = seed_work_dir(args.work_dir, key, seed)
    # the shipped models (seed 0) stand in only with --eval-only
    ckpt = train_or_find(args, key, config, wd, seed, (), row,
                         shipped_ok=seed == 0 and args.eval_only)
    row.setdefault('checkpoints', []).append(osp.relpath(ckpt, REPO))
    row.setdefault('checkpoint', row['checkpoints'][0])
    if args.export and seed == 0 and not ckpt.startswith(SHIPPED_DIR):
        print(f'[report] exported {export_weights(ckpt, key)}')
    pred_dir = osp.join(wd, f'pred_{tag}')
    row.setdefault('seeds', []).append(seed)
    row.setdefault('model_mIoU_seeds', []).append(
        model_miou(config, ckpt, osp.join(wd, f'eval_{tag}'), test_root,
                   pred_dir))
    row.setdefault('model_IoU_seeds', []).append(
        per_class_iou(pred_dir, test_root))
    fig_cols.setdefault(f'{key} prediction', pred_dir)


def train_or_find(args: argparse.Namespace, key: str, config: str,
                  work_dir: str, seed: int, options: Sequence[str],
                  row: dict, shipped_ok: bool = False) -> str:
    """The checkpoint of ``work_dir`` (``shipped_ok``: else the shipped
    weights), trained first unless it exists (``--eval-only``: must exist);
    the training time goes to ``row``."""
    ckpt = find_checkpoint(work_dir, key, shipped_ok=shipped_ok)
    if ckpt is None or not osp.isfile(ckpt):
        if args.eval_only:
            raise FileNotFoundError(
                f'--eval-only: no checkpoint for {key} (seed {seed}) in '
                f'{work_dir}' + (f' or {SHIPPED_DIR}' if shipped_ok else '')
                + '; run without --eval-only first')
        row.setdefault('train_s_seeds', []).append(
            train(config, work_dir, args.data_root, args.train_args, seed,
                  options))
        row['train_s'] = float(np.mean(row['train_s_seeds']))
        ckpt = find_checkpoint(work_dir, key, shipped_ok=False)
    return ckpt


def run_refiner(args: argparse.Namespace, key: str, test_root: str,
                tag: str, fig_cols: Dict[str, str]) -> dict:
    """One WeakCLIP row: start masks of the train split → WeakCLIP trained
    on them (test mIoU) → its refined train masks (mIoU next to the start
    masks) → an FCN trained on the refined masks (test mIoU); per seed."""
    label, source = REFINERS[key]
    weakclip = osp.join(CONFIG_DIR, WEAKCLIP_CONFIG)
    segmenter = osp.join(CONFIG_DIR, SEGMENTER_CONFIG)
    row = dict(method=label, config=WEAKCLIP_CONFIG, refiner=True)
    train_list = ['--ann-file', TRAIN_LIST]
    if source is None:
        start = osp.abspath(osp.join(args.data_root, 'SegmentationClassAug'))
        row['start_mIoU'] = 100.0
    else:
        start = osp.abspath(osp.join(args.work_dir, key, 'start_masks_train'))
        row['start_mIoU'], _ = pseudo_label_miou(
            osp.join(CONFIG_DIR, METHODS[source][1]), start, args.data_root,
            args.device, train_list)
    for seed in args.seeds:
        wd = osp.abspath(seed_work_dir(args.work_dir, key, seed))
        ckpt = train_or_find(
            args, key, weakclip, wd, seed,
            [f'train_dataloader.dataset.pseudo_seg_map_dir={start}'], row)
        row.setdefault('seeds', []).append(seed)
        row.setdefault('checkpoints', []).append(osp.relpath(ckpt, REPO))
        row.setdefault('model_mIoU_seeds', []).append(
            model_miou(weakclip, ckpt, osp.join(wd, f'eval_{tag}'),
                       test_root, osp.join(wd, f'pred_{tag}')))
        refined = osp.join(wd, 'refined_train')
        miou, secs = pseudo_label_miou(
            weakclip, refined, args.data_root, args.device,
            train_list + ['--checkpoint', ckpt, '--crf'])
        row.setdefault('refined_mIoU_seeds', []).append(miou)
        row.setdefault('refine_s_seeds', []).append(secs)
        seg_wd = osp.join(wd, 'segmenter')
        seg_ckpt = train_or_find(
            args, key + '_segmenter', segmenter, seg_wd, seed,
            [f'train_dataloader.dataset.pseudo_seg_map_dir={refined}'], {})
        row.setdefault('segmenter_mIoU_seeds', []).append(
            model_miou(segmenter, seg_ckpt, osp.join(seg_wd, f'eval_{tag}'),
                       test_root, osp.join(seg_wd, f'pred_{tag}')))
        if seed == args.seeds[0]:
            fig_cols[f'{key} prediction'] = osp.join(wd, f'pred_{tag}')
    for k in ('model', 'refined', 'segmenter'):
        row[f'{k}_mIoU'], row[f'{k}_mIoU_std'] = mean_std(
            row[f'{k}_mIoU_seeds'])
    return row


def run_supervised(args: argparse.Namespace, test_root: str,
                   tag: str) -> dict:
    """The FCN segmenter trained on the exact masks, per seed."""
    segmenter = osp.join(CONFIG_DIR, SEGMENTER_CONFIG)
    row = dict(method='FCN-R18 on the exact masks (fully supervised '
               'ceiling)', config=SEGMENTER_CONFIG, supervised=True)
    for seed in args.seeds:
        wd = osp.abspath(seed_work_dir(args.work_dir, SUPERVISED, seed))
        ckpt = train_or_find(
            args, SUPERVISED, segmenter, wd, seed,
            ['train_dataloader.dataset.pseudo_seg_map_dir='
             'SegmentationClassAug'], row)
        row.setdefault('seeds', []).append(seed)
        row.setdefault('model_mIoU_seeds', []).append(
            model_miou(segmenter, ckpt, osp.join(wd, f'eval_{tag}'),
                       test_root, osp.join(wd, f'pred_{tag}')))
    row['model_mIoU'], row['model_mIoU_std'] = mean_std(
        row['model_mIoU_seeds'])
    return row


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
        if key in REFINERS or key == SUPERVISED:
            row = (run_refiner(args, key, test_root, tag, fig_cols)
                   if key in REFINERS else
                   run_supervised(args, test_root, tag))
            rows.append(row)
            print(f'\n[report] {row["method"]}: {json.dumps(row)}',
                  flush=True)
            bar.update()
            print(flush=True)
            continue
        label, cfg_name, trainable = METHODS[key]
        config = osp.join(CONFIG_DIR, cfg_name)
        wd = osp.join(args.work_dir, key)
        row = dict(method=label, config=cfg_name, key=key)
        if key in NO_PSEUDO_LABELS:
            row['pseudo_label_mIoU'] = row['pseudo_label_s'] = None
        else:
            pl_dir = osp.join(wd, f'pseudo_labels_{tag}')
            row['pseudo_label_mIoU'], row['pseudo_label_s'] = \
                pseudo_label_miou(config, pl_dir, test_root, args.device)
            row['pseudo_label_IoU'] = per_class_iou(pl_dir, test_root)
            fig_cols[f'{key} pseudo'] = pl_dir
        if trainable:
            for seed in args.seeds:
                run_model_seed(args, key, config, seed, test_root, tag, row,
                               fig_cols)
            row['model_mIoU'], row['model_mIoU_std'] = mean_std(
                row['model_mIoU_seeds'])
            row['model_IoU'] = np.nanmean(
                np.asarray(row['model_IoU_seeds'], np.float64), 0).tolist()
        rows.append(row)
        print(f'\n[report] {label}: {json.dumps(row)}', flush=True)
        bar.update()
        print(flush=True)
    diffs = ablation_differences(rows, args.methods, args.seeds)
    table = format_table(rows, test_root, diffs)
    print(table)
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, f'report_{tag}.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.work_dir, f'report_{tag}.json'), 'w') as f:
        json.dump(dict(rows=rows, ablations=diffs), f, indent=1)
    save_figure(
        osp.join(args.work_dir, f'figure_{tag}.png'), test_root, fig_cols,
        args.num_figure)
    return rows


def format_table(rows: List[dict], test_root: str,
                 diffs: Optional[List[dict]] = None) -> str:
    """Markdown table of the report (model mIoU: mean ± std over seeds),
    then the paired ablation differences with their intervals."""

    def fmt(v, spec='.1f'):
        return '–' if v is None or v != v else format(v, spec)  # None, NaN

    def model(r):
        if r.get('model_mIoU') is None:
            return '–'
        n = len(r.get('model_mIoU_seeds', [1]))
        if n < 2:
            return fmt(r['model_mIoU'])
        return f"{r['model_mIoU']:.1f} ± {r['model_mIoU_std']:.1f} (n={n})"

    def spread(r, k):
        vals = r.get(f'{k}_mIoU_seeds') or []
        if len(vals) < 2:
            return fmt(r.get(f'{k}_mIoU'))
        return (f"{r[f'{k}_mIoU']:.1f} ± {r[f'{k}_mIoU_std']:.1f} "
                f'(n={len(vals)})')

    lines = [
        f'Toy World test split: {test_root}', '',
        '| method | pseudo-label mIoU | model mIoU | train time (s) | '
        'pseudo-label time (s) |', '|---|---|---|---|---|'
    ]
    for r in rows:
        if r.get('refiner') or r.get('supervised'):
            continue
        lines.append(f"| {r['method']} | {fmt(r['pseudo_label_mIoU'])} | "
                     f"{model(r)} | "
                     f"{fmt(r.get('train_s'), '.0f')} | "
                     f"{fmt(r['pseudo_label_s'], '.0f')} |")
    refiners = [r for r in rows if r.get('refiner')]
    if refiners:
        lines += [
            '', 'WeakCLIP refinement (train-split masks scored on the exact '
            'train masks; models on the test split):', '',
            '| WeakCLIP trained on | start masks mIoU (train) | refined '
            'masks mIoU (train) | WeakCLIP mIoU (test) | FCN-R18 on the '
            'refined masks (test) |', '|---|---|---|---|---|'
        ]
        for r in refiners:
            lines.append(
                f"| {r['method']} | {fmt(r['start_mIoU'])} | "
                f"{spread(r, 'refined')} | {spread(r, 'model')} | "
                f"{spread(r, 'segmenter')} |")
    for r in rows:
        if r.get('supervised'):
            lines += ['', f"{r['method']}: {spread(r, 'model')} mIoU "
                      '(test)']
    per_class = [r for r in rows if r.get('pseudo_label_IoU')
                 or r.get('model_IoU')]
    if per_class:
        from mmseg_excel.toy_world import CLASS_NAMES
        names = ['background'] + list(CLASS_NAMES)
        lines += [
            '', 'Per-class IoU (test; models: mean over the seeds):', '',
            '| method | labels | ' + ' | '.join(names) + ' |',
            '|---|---|' + '---|' * len(names)
        ]
        for r in per_class:
            for what, k in (('pseudo labels', 'pseudo_label_IoU'),
                            ('model', 'model_IoU')):
                if r.get(k):
                    lines.append(f"| {r['method']} | {what} | " + ' | '.join(
                        fmt(v) for v in r[k]) + ' |')
    if diffs:
        lines += [
            '', 'Model mIoU added by each component (ExCEL minus the '
            'ablation, paired by seed; 95 % t-interval):', '',
            '| component | difference | 95 % interval | seeds |',
            '|---|---|---|---|'
        ]
        for d in diffs:
            ci = ('–' if d['lo'] is None else
                  f"[{d['lo']:+.1f}, {d['hi']:+.1f}]")
            lines.append(f"| {d['component']} | {d['mean']:+.1f} | {ci} | "
                         f"{d['n']} |")
    return '\n'.join(lines)

if __name__ == '__main__':
    main()

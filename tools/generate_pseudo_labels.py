# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Pseudo labels of a dataset split (ExCEL: docs/methods/excel.md §10 and
docs/evaluation.md; CLIP-ES: docs/methods/clip_es.md §6).

Runs a config's model over a dataloader of the config (batched, any device)
and writes one PNG per image (class ids with the dataset's palette, 255 =
ignored). It

* resumes: images whose PNG exists are not recomputed (their PNG is read back
  for the metrics), and every PNG is written atomically (temp file + rename);
  a ``manifest.json`` in the output folder records the settings (config,
  model, split, checkpoint hash, CRF) and a rerun with other settings is
  refused unless ``--overwrite`` (no mix of stale and new masks);
* loads a checkpoint strictly: only the frozen CLIP keys (never saved, filled
  from the CLIP weights) may be missing;
* shows progress (mmengine's progress bar);
* optionally applies dense CRF (``--crf``; the ``crf`` entry of the config);
* prints mIoU with ``WSSSIoUMetric`` (per-class IoU / precision / recall /
  confusion ratio table) when the split has ground truth;
* saves a few pictures (image | pseudo mask | ground truth, and the CAM of
  each class as a heat map; ``WSSSVisualizer``, docs/visualization.md)
  under ``--show-dir`` (default ``<out-dir>/vis``).

Example::

    python tools/generate_pseudo_labels.py \
        configs/excel/excel_clip-vit-b16_training-free_voc12aug-320x320.py \
        --out-dir data/VOCdevkit/VOC2012/pseudo_labels/excel --split train
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import sys
import tempfile
import time
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar
from PIL import Image

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
from mmseg_excel.datasets.transforms.loading import read_rgb_image  # noqa: E402,E501


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='method config (model + datasets)')
    parser.add_argument('--out-dir', required=True, help='PNG output folder')
    parser.add_argument('--checkpoint', help='trained weights (optional)')
    parser.add_argument(
        '--split',
        default='pseudo_label',
        help='which dataloader of the config: "pseudo_label" '
        '(pseudo_label_dataloader, default), "train", "val" or "test"')
    parser.add_argument('--batch-size', type=int, help='override batch size')
    parser.add_argument('--device', default=None, help='cpu, cuda, cuda:1…')
    parser.add_argument(
        '--ann-file',
        help='override the split\'s ann_file (e.g. '
        'ImageSets/Segmentation/train_aug.txt for the masks a baseline '
        'trains on)')
    parser.add_argument(
        '--crf',
        action='store_true',
        help='dense CRF on the maps before PAR (ExCEL; the config\'s `crf`)')
    parser.add_argument(
        '--crf-workers',
        type=int,
        help='CRF worker processes, overlapped with the next forward '
        '(default: the config\'s crf.num_workers)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch'],
        default='none',
        help='pytorch: one shard per torchrun process '
        '(tools/dist_generate_pseudo_labels.sh)')
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='recompute every mask even if the folder holds masks of other '
        'settings')
    parser.add_argument(
        '--num-vis', type=int, default=4, help='pictures to save')
    parser.add_argument(
        '--show-dir',
        help='folder of the pictures (default: <out-dir>/vis)')
    parser.add_argument(
        '--max-images', type=int, default=None, help='stop after N images')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings (key=value)')
    return parser.parse_args(argv)


def write_png_atomic(path: str, label: np.ndarray, palette: List[int]):
    """Write a palette PNG via a temp file in the same folder + rename."""
    img = Image.fromarray(label.astype(np.uint8), mode='P')
    img.putpalette(palette)
    fd, tmp = tempfile.mkstemp(
        dir=osp.dirname(path), prefix='.tmp_', suffix='.png')
    os.close(fd)
    try:
        img.save(tmp)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def remove_stale_temp_files(out_dir: str) -> int:
    """Delete the temp files (``.tmp_*``) a killed run left behind; a
    finished PNG is never one of them (it is renamed into place whole)."""
    stale = [n for n in os.listdir(out_dir) if n.startswith('.tmp_')]
    for n in stale:
        os.remove(osp.join(out_dir, n))
    if stale:
        print(f'removed {len(stale)} unfinished temp file(s) of an '
              f'interrupted run from {out_dir}')
    return len(stale)


def dataloader_cfg(cfg: Config,
                   split: str,
                   batch_size: Optional[int],
                   ann_file: Optional[str] = None):
    """The dataloader config for ``split`` (no shuffling, finite)."""
    key = f'{split}_dataloader'
    if key not in cfg:
        raise KeyError(f'config has no {key}; choose --split among '
                       f'{[k[:-11] for k in cfg if k.endswith("_dataloader")]}')
    dl = cfg[key].copy()
    # ranks take interleaved shards, no padding duplicates (round_up)
    dl['sampler'] = dict(type='DefaultSampler', shuffle=False, round_up=False)
    dl['persistent_workers'] = False
    if batch_size is not None:
        dl['batch_size'] = batch_size
    if ann_file is not None:
        dl['dataset'] = dict(dl['dataset'], ann_file=ann_file)
    return dl


def label_to_original(label: torch.Tensor, meta: dict,
                      is_original: bool = False) -> np.ndarray:
    """A pseudo label of one image as (H, W) at its original size.

    ``is_original``: the model already returns labels at the original size
    (``labels_are_original``; padded batches are cropped top-left). Else the
    network-size label is cropped to ``img_shape`` and nearest-resized.
    """
    if meta.get('flip', False):
        raise ValueError('generate_pseudo_labels needs an un-flipped '
                         'pipeline (no RandomFlip in the dataloader)')
    ori_h, ori_w = meta['ori_shape'][:2]
    if is_original:
        if label.shape[0] < ori_h or label.shape[1] < ori_w:
            raise ValueError(f'{meta.get("img_path")}: label '
                             f'{tuple(label.shape)} is smaller than the '
                             f'image {(ori_h, ori_w)}')
        return label[:ori_h, :ori_w].cpu().numpy()
    img_h, img_w = meta['img_shape'][:2]
    label = label[:img_h, :img_w]
    if (img_h, img_w) != (ori_h, ori_w):
        label = F.interpolate(
            label[None, None].float(), size=(ori_h, ori_w),
            mode='nearest')[0, 0].long()
    return label.cpu().numpy()


def file_sha256(path: str) -> str:
    """Hex sha256 of a file (the checkpoint identity in the manifest)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def export_settings(cfg: Config, args: argparse.Namespace,
                    loader_cfg: dict) -> dict:
    """Everything that determines the masks, for ``manifest.json``."""
    ckpt = None
    if args.checkpoint:
        ckpt = dict(
            path=osp.abspath(args.checkpoint),
            sha256=file_sha256(args.checkpoint))
    to_plain = lambda x: json.loads(  # noqa: E731
        json.dumps(x, default=str, sort_keys=True))
    return dict(
        config=osp.abspath(args.config),
        model=to_plain(cfg.model.to_dict()),
        split=args.split,
        dataset=to_plain(
            Config(dict(d=loader_cfg['dataset'])).to_dict()['d']),
        checkpoint=ckpt,
        crf=to_plain(cfg.crf.to_dict()) if args.crf else None,
        max_images=args.max_images)


def check_manifest(out_dir: str, settings: dict, overwrite: bool) -> bool:
    """Write ``manifest.json``; refuse a folder made with other settings.

    Returns True when existing masks may be reused (same settings). A
    manifest without masks (a run that wrote none) is simply replaced.
    """
    path = osp.join(out_dir, 'manifest.json')
    has_pngs = any(n.endswith('.png') for n in os.listdir(out_dir))
    if osp.exists(path) and has_pngs:
        with open(path) as f:
            old = json.load(f)
        if old == settings:
            return True
        if not overwrite:
            diff = sorted(k for k in set(old) | set(settings)
                          if old.get(k) != settings.get(k))
            raise RuntimeError(
                f'{out_dir} holds pseudo labels made with other settings '
                f'(differing: {", ".join(diff)}; see {path}); use another '
                '--out-dir or pass --overwrite to recompute every mask')
    elif not overwrite and has_pngs and not osp.exists(path):
        raise RuntimeError(
            f'{out_dir} holds PNGs but no manifest.json, so their settings '
            'are unknown; use another --out-dir or pass --overwrite')
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix='.tmp_', suffix='.json')
    with os.fdopen(fd, 'w') as f:
        json.dump(settings, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
    return not overwrite


def save_vis(visualizer, path: str, image: np.ndarray,
             cams: Optional[torch.Tensor], cam_classes: Optional[list],
             pseudo: np.ndarray, gt: Optional[np.ndarray]) -> None:
    """image | pseudo mask | ground truth, and the CAMs (WSSSVisualizer)."""
    if image.shape[:2] != pseudo.shape:
        image = np.asarray(
            Image.fromarray(image).resize(pseudo.shape[::-1]))
    visualizer.add_wsss_sample(
        osp.basename(path),
        image,
        out_file=path,
        maps=None if cams is None else {'CAM': cams},
        map_classes=cam_classes,
        pseudo_label=pseudo,
        gt=gt)


def _item(out: dict, key: str, j: int):
    """Entry ``j`` of a per-image output (list or batched tensor)."""
    value = out.get(key)
    return None if value is None else value[j]


class _Batch:
    """One batch on its way out: labels computed (or a CRF still running in
    the worker pool), then written, scored and pictured by :func:`_finish`."""

    def __init__(self, samples, paths, names) -> None:
        self.samples, self.paths, self.names = samples, paths, names
        self.labels, self.cams, self.cam_classes = {}, {}, {}
        self.crf_handle, self.crf_todo, self.crf_keys = None, [], []


def main(argv: Optional[List[str]] = None) -> dict:
    """Generate, save and (when GT exists) evaluate pseudo labels."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmseg_excel  # noqa: F401
    from mmengine.dist import all_gather_object, barrier, broadcast_object_list
    from mmseg.registry import MODELS
    from mmseg_excel.apis import load_trained_weights, pseudo_label_mode
    from mmseg_excel.datasets import voc_colormap
    from mmseg_excel.evaluation import WSSSIoUMetric
    from mmseg_excel.evaluation.metrics.wsss_metric import table_rows
    from mmseg_excel.utils.dist import init_launcher, teardown_dist

    rank, world = init_launcher(args.launcher)
    pseudo_label_mode(cfg, args.checkpoint)
    crf = None
    if args.crf:
        if 'crf' not in cfg:
            raise KeyError(
                f'--crf given but {args.config} has no `crf` entry; CLIP-ES '
                'configs run their dense CRF inside the model (model.crf): '
                'leave --crf out for them')
        crf_cfg = cfg.crf.copy()
        if args.crf_workers is not None:
            crf_cfg['num_workers'] = args.crf_workers
        crf = MODELS.build(crf_cfg)
    loader_cfg = dataloader_cfg(cfg, args.split, args.batch_size,
                                args.ann_file)
    settings = export_settings(cfg, args, loader_cfg)
    if args.max_images is not None:  # the first N images, shared by ranks
        loader_cfg['dataset'] = dict(
            loader_cfg['dataset'], indices=args.max_images)
    # rank 0 checks the folder (one writer of manifest.json), the others
    # follow its decision
    decision = [None]
    if rank == 0:
        os.makedirs(args.out_dir, exist_ok=True)
        remove_stale_temp_files(args.out_dir)
        try:
            decision = [check_manifest(args.out_dir, settings,
                                       args.overwrite)]
        except RuntimeError as e:
            decision = [e]
    if world > 1:
        broadcast_object_list(decision, src=0)
    if isinstance(decision[0], Exception):
        raise decision[0]
    reuse = decision[0]

    if args.device:
        device = args.device
    elif torch.cuda.is_available():
        device = f'cuda:{torch.cuda.current_device()}'
    else:
        device = 'cpu'
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        load_trained_weights(model, args.checkpoint)
    model = model.to(device).eval()
    if not hasattr(model, 'generate_pseudo_labels'):
        raise TypeError(f'{type(model).__name__} cannot generate pseudo '
                        'labels (no generate_pseudo_labels method)')

    loader = Runner.build_dataloader(loader_cfg)
    dataset = loader.dataset
    # PNG palette: the dataset's colours, the VOC colour map for the rest
    classes = list(dataset.metainfo['classes'])
    colors = voc_colormap(256)
    colors[:len(classes)] = [
        list(c) for c in (dataset.metainfo.get('palette')
                          or colors[:len(classes)])
    ]
    palette = [v for c in colors for v in c]
    vis_dir = args.show_dir or osp.join(args.out_dir, 'vis')
    visualizer = None
    if args.num_vis and rank == 0:
        from mmseg_excel.visualization import WSSSVisualizer
        os.makedirs(vis_dir, exist_ok=True)
        visualizer = WSSSVisualizer(name='generate_pseudo_labels')
        visualizer.set_dataset_meta(classes, colors[:len(classes)])

    # results gathered over ranks by mmengine (collect_results), scored once
    metric = WSSSIoUMetric(
        prefix='pseudo', collect_device='gpu' if world > 1 else 'cpu')
    metric.dataset_meta = dataset.metainfo
    n_total = len(dataset)
    n_shard = len(loader.sampler) if hasattr(loader.sampler,
                                             '__len__') else n_total
    bar = ProgressBar(n_shard, file=sys.stdout) if rank == 0 else None
    state = dict(done=0, computed=0, vis_saved=0, has_gt=False)
    pending = None
    t_start = time.perf_counter()
    try:
        for batch in loader:
            out_batch = _predict(model, crf, batch, args, reuse, palette)
            if pending is not None:  # overlaps this forward with its CRF
                _finish(pending, state, metric, visualizer, vis_dir, args,
                        palette, bar)
            pending = out_batch
    except BaseException:
        # e.g. an unreadable image: write what the CRF workers already
        # finished (a rerun resumes after it), then report the error
        if pending is not None and pending.crf_handle is not None:
            _write_crf_labels(pending, palette)
        raise
    if pending is not None:
        _finish(pending, state, metric, visualizer, vis_dir, args, palette,
                bar)
    if rank == 0:
        sys.stdout.write('\n')
    seconds = time.perf_counter() - t_start
    done, computed, has_gt = state['done'], state['computed'], \
        state['has_gt']
    if world > 1:
        counts = all_gather_object((done, computed, has_gt, seconds))
        done = sum(c[0] for c in counts)
        computed = sum(c[1] for c in counts)
        has_gt = any(c[2] for c in counts)
        seconds = max(c[3] for c in counts)  # the slowest shard
    if rank == 0:
        shards = f' over {world} processes' if world > 1 else ''
        print(f'pseudo labels: {done} images ({computed} computed, '
              f'{done - computed} already present){shards} in '
              f'{args.out_dir}')
        print(f'export loop: {computed} images computed in {seconds:.3f} s '
              f'({computed / max(seconds, 1e-9):.3f} images/s)')
    metrics = {}
    if has_gt:
        metrics = dict(metric.evaluate(n_total))
        metrics = {k[len('pseudo/'):] if k.startswith('pseudo/') else k: v
                   for k, v in metrics.items()}
        if rank == 0:
            print('\n'.join(table_rows(metric.last_table)))
            print(f'pseudo-label mIoU: {metrics["mIoU"]:.2f} (precision '
                  f'{metrics["mPrecision"]:.2f}, recall '
                  f'{metrics["mRecall"]:.2f}, confusion FP/TP '
                  f'{metrics["mConfusion"]:.4f})')
            metrics['per_class'] = {
                k: list(map(str if k == 'Class' else float, v))
                for k, v in metric.last_table.items()
            }
    if world > 1:
        barrier()
        teardown_dist()
    return metrics


def _predict(model, crf, batch: dict, args: argparse.Namespace, reuse: bool,
             palette: List[int]) -> _Batch:
    """Run the model on the images of ``batch`` whose PNG is missing; start
    their CRF (asynchronous with CRF workers) or write their PNGs."""
    from mmseg_excel.apis import cam_classes as cam_classes_of
    samples = batch['data_samples']
    names = [
        osp.splitext(osp.basename(s.img_path))[0] + '.png' for s in samples
    ]
    paths = [osp.join(args.out_dir, n) for n in names]
    b = _Batch(samples, paths, names)
    todo = [i for i, p in enumerate(paths) if not (reuse and osp.exists(p))]
    if not todo:
        return b
    sub = dict(
        inputs=[batch['inputs'][i] for i in todo],
        data_samples=[samples[i] for i in todo])
    data = model.data_preprocessor(sub, False)
    with torch.no_grad():
        out = model.generate_pseudo_labels(data['inputs'],
                                           data['data_samples'])
    original = bool(out.get('labels_are_original', False))
    images, probs = [], []
    for j, i in enumerate(todo):
        meta = data['data_samples'][j].metainfo
        b.cams[i] = _item(out, 'cams_highres', j)
        b.cam_classes[i] = cam_classes_of(out, j)
        if crf is not None:
            image, scores, keys = crf_inputs(out, j, meta, samples[i])
            images.append(image)
            probs.append(scores)
            b.crf_todo.append(i)
            b.crf_keys.append(keys)
        else:
            lab = label_to_original(
                _item(out, 'pseudo_labels', j), meta, original)
            write_png_atomic(paths[i], lab, palette)
            b.labels[i] = lab
    if crf is not None:
        b.crf_handle = crf.inference_batch_async(images, probs)
    return b


def _write_crf_labels(b: _Batch, palette: List[int]) -> None:
    """Wait for the CRF of a batch and write its labels (once)."""
    if b.crf_handle is None:
        return
    for i, keys, prob in zip(b.crf_todo, b.crf_keys, b.crf_handle.get()):
        lab = keys[prob.argmax(0)].numpy()
        write_png_atomic(b.paths[i], lab, palette)
        b.labels[i] = lab
    b.crf_handle = None


def _finish(b: _Batch, state: dict, metric, visualizer, vis_dir: str,
            args: argparse.Namespace, palette: List[int], bar) -> None:
    """Write the CRF labels of a batch, then score and picture it."""
    _write_crf_labels(b, palette)
    state['computed'] += len(b.labels)
    for i, s in enumerate(b.samples):
        lab = b.labels.get(i)
        if lab is None:  # resumed: read what an earlier run wrote
            lab = np.asarray(Image.open(b.paths[i]))
        if 'gt_sem_seg' in s:
            state['has_gt'] = True
            metric.add(
                torch.from_numpy(lab.astype(np.int64)),
                s.gt_sem_seg.data[0].long())
        if (visualizer is not None and state['vis_saved'] < args.num_vis
                and i in b.labels):
            img = read_rgb_image(s.img_path)
            c, names_c = b.cams.get(i), b.cam_classes.get(i)
            if c is not None:
                c = c.float().cpu().clamp(0, 1)
                if names_c is not None:
                    c = c[:len(names_c)]
                c = c[:, :lab.shape[0], :lab.shape[1]]
            gt_np = (s.gt_sem_seg.data[0].numpy().astype(np.uint8)
                     if 'gt_sem_seg' in s else None)
            save_vis(visualizer, osp.join(vis_dir, b.names[i]), img, c,
                     names_c, lab, gt_np)
            state['vis_saved'] += 1
        state['done'] += 1
        if bar is not None:
            bar.update()


def crf_inputs(out: dict, j: int, meta: dict, sample):
    """What the dense CRF of image ``j`` needs: the original uint8 RGB
    image, [background; maps] BEFORE PAR at the original size and the label
    of each channel (the official CRF variant; PAR's output is not used).
    The label is ``keys[argmax Q]``."""
    if 'keys' not in out:
        raise TypeError('--crf needs a model that returns the maps before '
                        'PAR with their label keys (ExCEL)')
    scores = out['cams_with_bkg'][j]
    keys = out['keys'][j]
    ori = tuple(meta['ori_shape'][:2])
    if tuple(scores.shape[-2:]) != ori:
        raise ValueError(f'{sample.img_path}: maps {tuple(scores.shape)} are '
                         f'not at the original size {ori}')
    image = read_rgb_image(sample.img_path)
    return image, scores.float().cpu(), keys.cpu()


if __name__ == '__main__':
    main()

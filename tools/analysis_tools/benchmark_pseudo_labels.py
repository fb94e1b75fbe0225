# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Images/s and peak memory of training-free pseudo-label generation.

Times ``model.generate_pseudo_labels`` on random images of the configured
size with random image-level labels (``--classes-per-image``, default 2),
stage by stage, for both training-free models:

* ExCEL (``configs/excel/*training-free*``): CLIP forward (+SVC), patch-text
  maps, affinity (CAA), PAR, and with ``--crf`` the dense CRF of
  ``tools/generate_pseudo_labels.py --crf`` (pydensecrf, CPU, per image);
* CLIP-ES (``configs/clip_es/*``): CLIP forward (blocks 0…L−2, no grad),
  GradCAM (block L−1 forward + the backward of every present class, batched
  over classes and images), CAA, and the model's own dense CRF (part of the
  config). ``--gradcam-per-class`` also times the official schedule, one
  block-L−1 forward + backward per (image, class), on the same tokens, to
  show what batching saves.

"other" is the rest of ``generate_pseudo_labels`` (background, upsampling,
input resizing, label assembly). Peak memory: CUDA allocator peak on GPU,
process max RSS on CPU (model build included).

``--processes P [P ...]`` measures the export end to end instead: it writes
``--num-images`` random images of ``--size`` in the VOC layout and runs
``tools/generate_pseudo_labels.py`` on them (``dist_generate_pseudo_labels.sh``
for P > 1; CPU threads split evenly between the processes) for every pair of
P and ``--crf-workers W`` (ExCEL: ``--crf --crf-workers W``; CLIP-ES: the
model's CRF with ``num_workers=W``), reads the tool's own "export loop"
rate (start-up excluded), the mean PNG size, and projects the time and disk
of a COCO 2014 train + val export (82,783 + 40,137 images) on one machine
and on ``--machines`` machines from the best measured rate.

Example::

    python tools/analysis_tools/benchmark_pseudo_labels.py \
        configs/excel/excel_clip-vit-b16_training-free_voc12aug-320x320.py \
        --random-weights --batch-size 4 --crf
    python tools/analysis_tools/benchmark_pseudo_labels.py \
        configs/clip_es/clip-es_clip-vit-b16_training-free_voc12aug.py \
        --random-weights --batch-size 4 --size 375 500 --gradcam-per-class
    python tools/analysis_tools/benchmark_pseudo_labels.py \
        configs/clip_es/clip-es_clip-vit-b16_training-free_voc12aug.py \
        --random-weights --batch-size 2 --size 480 640 --num-images 8 \
        --processes 1 2 --crf-workers 0 2 --machines 8
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.utils import ProgressBar

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_train import (StageTimer, build, clip_sources,  # noqa: E402
                             get_device, load_config, memory_label,
                             num_fg_classes, peak_memory_mb, random_batch)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--size', type=int, nargs=2, default=None,
                   help='image H W (default: the config crop size)')
    p.add_argument('--classes-per-image', type=int, default=2)
    p.add_argument('--device', default=None)
    p.add_argument('--crf', action='store_true',
                   help='ExCEL: dense CRF of the config (CLIP-ES: always '
                   'the model\'s own CRF when its config has one)')
    p.add_argument('--gradcam-per-class', action='store_true',
                   help='CLIP-ES: also time one GradCAM backward per class')
    p.add_argument('--random-weights', action='store_true')
    p.add_argument('--processes', type=int, nargs='+', default=None,
                   help='end-to-end export rate with these process counts')
    p.add_argument('--crf-workers', type=int, nargs='+', default=[0],
                   help='CRF worker counts (end-to-end mode)')
    p.add_argument('--num-images', type=int, default=8,
                   help='images of the end-to-end export')
    p.add_argument('--machines', type=int, default=8,
                   help='machines of the COCO projection')
    p.add_argument('--no-tse', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def is_clip_es(model) -> bool:
    return hasattr(model, 'gradcam') and hasattr(model, 'visual')


def stage_methods(model) -> List[Tuple[str, object, str]]:
    """(stage name, object, method) timed inside the model."""
    if is_clip_es(model):
        out = [
            ('CLIP forward (blocks 0..L-2)', model.gradcam, 'frozen_forward'),
            ('GradCAM (block L-1 fwd + bwd, batched over classes)',
             model.gradcam, 'gradcam'),
            ('CAA', model.affinity, 'forward'),
        ]
        if model.crf is not None:
            out.append(('CRF', model.crf, 'predict'))
        return out
    return [
        ('CLIP forward (+SVC)', model, 'extract_feat'),
        ('patch-text maps', model.cam_head, 'forward'),
        ('LVC re-forward', model.backbone, 'forward_lvc'),
        ('decoder', model.decode_head, 'forward'),
        ('affinity (CAA)', model.pseudo_labeler.affinity, 'forward'),
        ('PAR', model.pseudo_labeler.par, 'forward'),
    ]


def make_inputs(model, batch: int, size, classes_per_image: int, device,
                img_dir: str):
    """Random RGB images (also written to ``img_dir``: the CLIP-ES CRF reads
    ``img_path``), normalised with the model's preprocessor, and data
    samples with random image-level labels."""
    import cv2
    _, samples = random_batch(batch, size, num_fg_classes(model), device,
                              classes_per_image)
    rgb = [
        np.random.default_rng(i).integers(0, 256, (*size, 3), np.uint8)
        for i in range(batch)
    ]
    pre = model.data_preprocessor
    mean = pre.mean.view(1, 3, 1, 1).cpu()
    std = pre.std.view(1, 3, 1, 1).cpu()
    x = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float()
    imgs = ((x - mean) / std).to(device)
    for i, (s, im) in enumerate(zip(samples, rgb)):
        path = osp.join(img_dir, f'{i}.png')
        cv2.imwrite(path, np.ascontiguousarray(im[..., ::-1]))
        s.set_metainfo(dict(img_path=path))
    return imgs, samples, rgb


def excel_crf(crf, out: dict, rgb: List[np.ndarray]) -> List[np.ndarray]:
    """ExCEL ``--crf`` as ``tools/generate_pseudo_labels.py``: dense CRF on
    ``[bg; CAMs]`` of the present classes, argmax to class ids."""
    # per-image maps before PAR at the original size, with their keys; the
    # batch runs in the CRF worker pool when crf.num_workers > 0
    scores = [out['cams_with_bkg'][j].float().cpu() for j in range(len(rgb))]
    probs = crf.inference_batch(rgb, scores)
    return [out['keys'][j].cpu()[q.argmax(0)].numpy()
            for j, q in enumerate(probs)]


def time_gradcam_per_class(model, imgs: torch.Tensor, samples,
                           timer: StageTimer, iters: int,
                           warmup: int) -> float:
    """Mean seconds per batch of the official schedule: block L−1 forward +
    one backward per (image, class). The softmax is over the image's own
    classes + background whatever their order, so putting class k first
    and asking for one target gives the CAM of class k exactly."""
    net_in = torch.stack(model._network_inputs(imgs, samples))
    patch = model.visual.conv1.stride
    grid = (net_in.shape[-2] // patch[0], net_in.shape[-1] // patch[1])
    tokens, _ = model.gradcam.frozen_forward(model.visual, net_in)
    timer.end_iter(keep=False)  # not part of the per-class GradCAM time
    keys = [model.present_classes(s).to(tokens.device) for s in samples]
    for it in range(warmup + iters):
        with timer.stage('GradCAM per class (official schedule)'):
            for i, k in enumerate(keys):
                for j in range(k.numel()):
                    order = torch.cat([k[j:j + 1], k[:j], k[j + 1:]])
                    txt = torch.cat([model.fg_text[order], model.bg_text])
                    model.gradcam.gradcam(model.visual, tokens[i:i + 1],
                                          [txt], [1], model.logit_scale,
                                          grid)
        timer.end_iter(keep=it >= warmup)
    return timer.mean('GradCAM per class (official schedule)')


#: COCO 2014 images: train + val
COCO_IMAGES = {'train': 82783, 'val': 40137}
ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _option(key: str, value) -> str:
    return f'{key}={value}'


def export_run(args, cfg, data_root: str, out_dir: str, processes: int,
               crf_workers: int) -> Tuple[float, int, float]:
    """One end-to-end export; returns (images/s of the export loop, images
    computed, mean PNG bytes)."""
    clip_es = cfg.model.get('type') == 'CLIPES'
    opts = [
        _option('pseudo_label_dataloader.dataset.data_root', data_root),
        _option('pseudo_label_dataloader.dataset.ann_file',
                'ImageSets/Segmentation/train_aug.txt'),
        _option('pseudo_label_dataloader.num_workers', 0),
    ]
    if args.random_weights:
        opts += [_option(f'{k}.pretrained', None)
                 for k, _ in clip_sources(cfg.model)]
        if cfg.model.get('text_head', {}).get('tse'):
            opts.append(_option('model.text_head.tse.cache_dir', None))
    if args.no_tse and 'text_head' in cfg.model:
        opts.append(_option('model.text_head.tse', None))
    extra = ['--crf', '--crf-workers', str(crf_workers)]
    if clip_es:
        extra = []
        if cfg.model.get('crf'):
            opts.append(_option('model.crf.num_workers', crf_workers))
    for k, v in (args.cfg_options or {}).items():
        opts.append(_option(k, v))
    tool_args = [
        '--out-dir', out_dir, '--num-vis', '0', '--batch-size',
        str(args.batch_size), *extra
    ]
    if args.device:
        tool_args += ['--device', args.device]
    tool_args += ['--cfg-options', *opts]
    if processes == 1:
        cmd = [sys.executable, osp.join(ROOT, 'tools',
                                        'generate_pseudo_labels.py'),
               args.config, *tool_args]
    else:
        cmd = ['bash', osp.join(ROOT, 'tools',
                                'dist_generate_pseudo_labels.sh'),
               args.config, str(processes), *tool_args]
    threads = max(1, (os.cpu_count() or 1) // processes)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               PYTHONUNBUFFERED='1',
               PATH=f'{osp.dirname(sys.executable)}{os.pathsep}'
               f'{os.environ.get("PATH", "")}')
    env.setdefault('PORT', '29533')
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f'export with {processes} processes failed:\n'
                           f'{out[-3000:]}')
    m = re.search(r'export loop: (\d+) images computed in ([0-9.]+) s', out)
    if m is None:
        raise RuntimeError(f'no "export loop" line in the output:\n'
                           f'{out[-3000:]}')
    n, sec = int(m.group(1)), float(m.group(2))
    pngs = [f for f in os.listdir(out_dir) if f.endswith('.png')]
    size = sum(osp.getsize(osp.join(out_dir, f)) for f in pngs)
    return n / max(sec, 1e-9), n, size / max(1, len(pngs))


def export_scaling(args, cfg) -> Dict[str, float]:
    """Images/s of the real export against processes x CRF workers, and
    the COCO projection (see the module docstring)."""
    from mmseg_excel.testing.tiny_datasets import make_tiny_voc
    size = tuple(args.size or cfg.get('crop_size', (320, 320)))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = make_tiny_voc(osp.join(tmp, 'voc'), num_train=args.num_images,
                             num_val=0, size=size)
        for p in args.processes:
            for w in args.crf_workers:
                out_dir = osp.join(tmp, f'out_p{p}_w{w}')
                rate, n, png = export_run(args, cfg, data['root'], out_dir, p,
                                          w)
                rows.append((p, w, rate, n, png))
                print(f'processes {p}, CRF workers {w}: {rate:.3f} images/s '
                      f'({n} images)', flush=True)
    print(f'config: {args.config}')
    print(f'end-to-end export, size {size}, batch {args.batch_size}/process,'
          f' {os.cpu_count()} CPU threads shared, random weights '
          f'{args.random_weights}')
    print(f'{"processes":>10}{"CRF workers":>13}{"images/s":>12}'
          f'{"s/image":>10}{"PNG KiB":>9}')
    for p, w, rate, n, png in rows:
        print(f'{p:>10}{w:>13}{rate:>12.3f}{1 / max(rate, 1e-9):>10.3f}'
              f'{png / 1024:>9.1f}')
    best = max(rows, key=lambda r: r[2])
    total = sum(COCO_IMAGES.values())
    png = sum(r[4] for r in rows) / len(rows)
    hours = total / best[2] / 3600
    print(f'COCO 2014 train + val ({total} images) at the best rate '
          f'({best[2]:.3f} images/s, {best[0]} processes, {best[1]} CRF '
          f'workers): {hours:.1f} h on one machine, '
          f'{hours / args.machines:.1f} h on {args.machines}; PNGs '
          f'~{total * png / 2**30:.2f} GiB')
    return dict(best_rate=best[2], coco_hours=hours,
                png_bytes=png, rows=rows)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Print images/s by stage; returns the mean seconds per batch."""
    args = parse_args(argv)
    cfg = load_config(args)
    if args.processes:
        return export_scaling(args, cfg)
    from mmseg.registry import MODELS
    if cfg.model.get('type') == 'CLIPES':
        # random tensors, not files, feed the network (the CRF still reads
        # the images written below, as the official code does)
        cfg.model.setdefault('test_cfg', {})['input_source'] = 'inputs'
    device = get_device(args.device)
    model = build(cfg, args).to(device).eval()
    clip_es = is_clip_es(model)
    size = tuple(args.size or cfg.get('crop_size', (320, 320)))
    b = args.batch_size
    crf = None
    if args.crf and not clip_es:
        if 'crf' not in cfg:
            raise KeyError(f'--crf given but {args.config} has no `crf`')
        crf_cfg = cfg.crf.copy()
        crf_cfg['num_workers'] = args.crf_workers[0]
        crf = MODELS.build(crf_cfg)

    timer = StageTimer(device)
    for name, obj, attr in stage_methods(model):
        timer.wrap(obj, attr, name)
    with tempfile.TemporaryDirectory() as img_dir:
        imgs, samples, rgb = make_inputs(model, b, size,
                                         args.classes_per_image, device,
                                         img_dir)
        bar = ProgressBar(args.warmup + args.iters, file=sys.stdout)
        for i in range(args.warmup + args.iters):
            with timer.stage('total'):
                with torch.no_grad():
                    out = model.generate_pseudo_labels(imgs, samples)
                if crf is not None:
                    with timer.stage('CRF'):
                        excel_crf(crf, out, rgb)
            timer.end_iter(keep=i >= args.warmup)
            bar.update()
        sys.stdout.write('\n')
        res = {k: timer.mean(k) for k in timer.times}
        leaves = [n for n, _, _ in stage_methods(model)] + ['CRF']
        res['other'] = res['total'] - sum(res.get(n, 0.0) for n in set(leaves))
        per_class = None
        if args.gradcam_per_class and clip_es:
            per_class = time_gradcam_per_class(model, imgs, samples, timer,
                                               args.iters, args.warmup)

    print(f'config: {args.config}')
    print(f'model: {type(model).__name__}, device: {device}, batch {b}, '
          f'size {size}, {args.classes_per_image} classes/image, '
          f'threads {torch.get_num_threads()}, '
          f'random weights {args.random_weights}, '
          f'iters {args.iters} (+{args.warmup} warm-up)')
    width = max(len(n) for n in res) + 2
    print(f'{"stage":<{width}}{"s/batch":>10}{"images/s":>11}')
    print('-' * (width + 21))
    order = list(dict.fromkeys(  # CLIP-ES times its own CRF: no repeat
        [n for n, _, _ in stage_methods(model)] + ['CRF', 'other', 'total']))
    for name in order:
        if name not in res:
            continue
        t = res[name]
        print(f'{name:<{width}}{t:>10.4f}{b / max(t, 1e-9):>11.2f}')
    if per_class is not None:
        name = 'GradCAM per class (official schedule)'
        batched = res['GradCAM (block L-1 fwd + bwd, batched over classes)']
        print(f'{name:<{width}}{per_class:>10.4f}'
              f'{b / max(per_class, 1e-9):>11.2f}')
        print(f'GradCAM batching speed-up: '
              f'{per_class / max(batched, 1e-9):.2f}x')
        res[name] = per_class
    print(f'peak memory: {peak_memory_mb(device):.0f} MiB '
          f'[{memory_label(device)}]')
    return res


if __name__ == '__main__':
    main()

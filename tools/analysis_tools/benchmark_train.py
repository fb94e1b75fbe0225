# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Seconds per ExCEL training iteration by stage, before and after LVC.

Builds the config's model, feeds random images of the configured crop size
(batch size from the config's train dataloader unless ``--batch-size``) with
random image-level labels, and times one optimiser step per iteration:
CLIP forward, patch-text maps, LVC re-forward, refinement (CAA), PAR,
decoder, losses, backward + step. It also times the frozen CLIP forward alone,
so the step/forward ratio of the issue is printed. Peak memory: CUDA
allocator peak on GPU, process max RSS on CPU.

``--random-weights`` builds CLIP without pretrained weights (same cost) for
machines without the OpenAI checkpoint.

Example::

    python tools/analysis_tools/benchmark_train.py \
        configs/excel/excel_clip-vit-b16_1xb4-30k_voc12aug-320x320.py \
        --random-weights --iters 3
"""
import argparse
import os.path as osp
import resource
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Dict, List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData  # noqa: F401

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--iters', type=int, default=3, help='timed iterations')
    p.add_argument('--warmup', type=int, default=1, help='untimed ones')
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--device', default=None)
    p.add_argument('--random-weights', action='store_true')
    p.add_argument('--no-tse', action='store_true',
                   help='skip the attribute bank (no description clustering)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


class StageTimer:
    """Accumulates wall time per named stage (device-synchronised)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.times: Dict[str, List[float]] = defaultdict(list)
        self._current: Dict[str, float] = defaultdict(float)

    def sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    @contextmanager
    def stage(self, name: str):
        self.sync()
        t0 = time.perf_counter()
        yield
        self.sync()
        self._current[name] += time.perf_counter() - t0

    def wrap(self, obj, attr: str, name: str) -> None:
        """Time every call of ``obj.attr`` as stage ``name``."""
        fn = getattr(obj, attr)

        def timed(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)

        setattr(obj, attr, timed)

    def commit(self) -> None:
        for k, v in self._current.items():
            self.times[k].append(v)
        self._current = defaultdict(float)

    def mean(self, name: str) -> float:
        v = self.times.get(name, [])
        return sum(v) / len(v) if v else 0.0


def peak_memory_mb(device: torch.device) -> float:
    """CUDA allocator peak, or the process max RSS on CPU (MiB)."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(cfg: Config, args) -> torch.nn.Module:
    """The model of the config on the requested device."""
    from mmseg.registry import MODELS
    m = cfg.model
    if args.random_weights:
        m.backbone.pretrained = None
        m.text_head.clip.pretrained = None
    if args.no_tse:
        m.text_head.tse = None
    return MODELS.build(m)


def random_batch(model, batch: int, crop, num_fg: int, device):
    """Normalised random images and data samples with 1-2 labels each."""
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(0)
    imgs = torch.randn(batch, 3, *crop, generator=g).to(device)
    samples = []
    for _ in range(batch):
        lab = torch.zeros(num_fg)
        lab[torch.randperm(num_fg, generator=g)[:2]] = 1
        s = SegDataSample(metainfo=dict(img_shape=crop, ori_shape=crop))
        s.gt_cls_label = lab.to(device)
        samples.append(s)
    return imgs, samples


def run(model, timer: StageTimer, imgs, samples, optim, iters: int,
        warmup: int) -> None:
    for i in range(warmup + iters):
        with timer.stage('step (total)'):
            losses = model.loss(imgs, samples)
            loss = sum(v for k, v in losses.items() if 'loss' in k)
            with timer.stage('backward + step'):
                optim.zero_grad()
                loss.backward()
                optim.step()
        if i >= warmup:
            timer.commit()
        else:
            timer._current = defaultdict(float)


def main(argv: Optional[List[str]] = None) -> None:
    """Print the stage table before and after the LVC switch."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    model = build(cfg, args).to(device)
    model.train()
    batch = args.batch_size or cfg.train_dataloader.batch_size
    crop = tuple(cfg.get('crop_size', (320, 320)))
    imgs, samples = random_batch(model, batch, crop, model.text_head.num_fg,
                                 device)
    optim = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4)

    timer = StageTimer(device)
    # the frozen CLIP forward alone, the reference of the ratios
    for i in range(args.warmup + args.iters):
        with torch.no_grad(), timer.stage('CLIP forward alone'):
            model.backbone(imgs)
        if i >= args.warmup:
            timer.commit()
        else:
            timer._current = defaultdict(float)
    clip_alone = timer.mean('CLIP forward alone')

    timer.wrap(model, 'extract_feat', 'CLIP forward (+SVC)')
    timer.wrap(model.cam_head, 'forward', 'patch-text maps')
    timer.wrap(model.backbone, 'forward_lvc', 'LVC re-forward')
    timer.wrap(model.pseudo_labeler.affinity, 'forward', 'refinement (CAA)')
    timer.wrap(model.pseudo_labeler.par, 'forward', 'PAR')
    timer.wrap(model.decode_head, 'forward', 'decoder')
    timer.wrap(model.decode_head, 'loss_by_feat', 'losses')

    print(f'config: {args.config}\ndevice: {device}, batch {batch}, '
          f'crop {crop}, threads {torch.get_num_threads()}')
    results = {}
    for phase, it in (('before LVC', 0), ('after LVC', None)):
        if it is None:
            if model.lvc_start_iter is None:
                continue
            it = model.lvc_start_iter
        model.set_train_iter(it)
        timer.times.clear()
        run(model, timer, imgs, samples, optim, args.iters, args.warmup)
        results[phase] = {k: timer.mean(k) for k in timer.times}
    stages = ['CLIP forward (+SVC)', 'patch-text maps', 'LVC re-forward',
              'refinement (CAA)', 'PAR', 'decoder', 'losses',
              'backward + step', 'step (total)']
    header = f'{"stage":<24}' + ''.join(f'{p:>14}' for p in results)
    print(header)
    print('-' * len(header))
    for s in stages:
        print(f'{s:<24}' + ''.join(f'{results[p].get(s, 0.0):>13.3f}s'
                                   for p in results))
    print(f'{"CLIP forward alone":<24}{clip_alone:>13.3f}s')
    for p in results:
        ratio = results[p]['step (total)'] / max(clip_alone, 1e-9)
        print(f'step / CLIP forward ({p}): {ratio:.2f}x')
    print(f'peak memory: {peak_memory_mb(device):.0f} MiB')


if __name__ == '__main__':
    main()

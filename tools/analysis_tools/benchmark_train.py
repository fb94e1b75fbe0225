# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Seconds per training iteration by stage: ExCEL (before and after LVC),
CLIP-ES, WeakCLIP.

Builds the config's model, feeds random images of the configured crop size
(batch size from the config's train dataloader unless ``--batch-size``) with
random image-level labels (``--classes-per-image``, default 2), and times one
optimiser step per iteration, stage by stage:

====================  =====================================================
CLIP forward (+SVC)   ``model.extract_feat``: frozen CLIP, no grad
patch-text maps       ``model.cam_head`` (feature surgery,
docs/methods/excel.md §3)
LVC re-forward        ``backbone.forward_lvc`` (after the switch only)
refinement (CAA)      ``pseudo_labeler.affinity``
PAR                   ``pseudo_labeler.par``
decoder               ``decode_head.forward``
losses                ``decode_head.loss_by_feat``
backward + step       ``loss.backward()`` and the optimiser step
other                 the rest of the step (labels, background, upsampling)
====================  =====================================================

It also times the frozen CLIP forward alone (``model.backbone`` under
``no_grad``, SVC included as configured: what every step must pay), the
reference of the issue's targets: a step at most 1.5x of it before the LVC
switch and at most 2x after it. The reference forward runs right before
every timed step (interleaved), so a machine that slows down or speeds up
during the run (shared hosts) moves both sides of the ratio alike; the
ratio of each phase is its mean step over its mean CLIP forward, and the
per-iteration ratios are printed next to it. Beside it runs the plain
open_clip forward of the same weights (open_clip's blocks, fused attention,
no SVC), so the cost of the calibrated forward itself is visible. Peak memory: CUDA allocator
peak of each phase on GPU, the process max RSS so far on CPU (it includes
the model build).

``--random-weights`` builds CLIP without pretrained weights (same cost) for
machines without the OpenAI checkpoint; ``--amp`` runs the step under
``torch.autocast`` (bf16 where supported, as ``tools/train.py --amp``: the
decoder in bf16, the frozen CLIP and the pseudo labeler in fp32); the CLIP
reference is always the fp32 forward.

A WeakCLIP config (docs/methods/weakclip.md) gets its own table, one
phase, random pseudo masks (``--classes-per-image`` classes + background,
a border of ignored pixels) as targets:

==========================  ===============================================
CLIP image encoder          ``model.backbone`` (trained at the schedule's
                            lr floor, so with gradients)
pyramid adapter             ``model.adapter``
text encoder                ``model.text_encoder`` (learnable context)
co-attention + score map    ``model.match``
decoder (FPN + head)        ``model.neck`` + ``model.decode_head``
CRF (loss)                  the dense CRF of the boundary loss (CPU)
seeding + boundary          the rest of ``model.seg_losses``
identity head loss          ``model.identity_losses``
backward + step             ``loss.backward()`` and the optimiser step
==========================  ===============================================

Examples::

    python tools/analysis_tools/benchmark_train.py \
        configs/excel/excel_clip-vit-b16_1xb4-30k_voc12aug-320x320.py \
        --random-weights --iters 2
    python tools/analysis_tools/benchmark_train.py \
        configs/weakclip/weakclip_clip-vit-b16_2xb8-20k_voc12aug-excel-pl-512x512.py \
        --random-weights --iters 2 --batch-size 2
"""
import argparse
import os.path as osp
import resource
import sys
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

#: step / CLIP-forward targets of the issue
TARGETS = {'before LVC': 1.5, 'after LVC': 2.0}
#: leaf stages of one training step, in data-flow order
TRAIN_STAGES = ('CLIP forward (+SVC)', 'patch-text maps', 'LVC re-forward',
                'refinement (CAA)', 'PAR', 'decoder', 'losses',
                'backward + step')


#: leaf stages of one WeakCLIP training step, in data-flow order
WEAKCLIP_STAGES = ('CLIP image encoder', 'pyramid adapter', 'text encoder',
                   'co-attention + score map', 'decoder (FPN + head)',
                   'CRF (loss)', 'seeding + boundary', 'identity head loss',
                   'backward + step')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--iters', type=int, default=3, help='timed iterations')
    p.add_argument('--warmup', type=int, default=1, help='untimed ones')
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--size', type=int, nargs=2, default=None,
                   help='image H W (default: the config crop size)')
    p.add_argument('--classes-per-image', type=int, default=2)
    p.add_argument('--device', default=None)
    p.add_argument('--amp', action='store_true',
                   help='autocast (bf16 where supported, else fp16)')
    p.add_argument('--random-weights', action='store_true',
                   help='CLIP architecture without pretrained weights')
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
        try:
            yield
        finally:
            self.sync()
            self._current[name] += time.perf_counter() - t0

    def wrap(self, obj, attr: str, name: str) -> None:
        """Time every call of ``obj.attr`` as stage ``name`` (an instance
        attribute shadows the method; ``nn.Module.__call__`` uses it)."""
        fn = getattr(obj, attr)

        def timed(*args, **kwargs):
            with self.stage(name):
                return fn(*args, **kwargs)

        setattr(obj, attr, timed)

    def end_iter(self, keep: bool) -> None:
        """Close one iteration: keep its times, or drop them (warm-up)."""
        if keep:
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


def reset_peak_memory(device: torch.device) -> None:
    """Start a new CUDA peak (the CPU max RSS cannot be reset)."""
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)


def memory_label(device: torch.device) -> str:
    return ('CUDA allocator peak' if device.type == 'cuda' else
            'process max RSS so far')


def amp_context(device: torch.device, enabled: bool):
    """``torch.autocast`` in bf16 where supported (fp16 on older GPUs)."""
    if not enabled:
        return nullcontext()
    dtype = torch.bfloat16
    if device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        dtype = torch.float16
    return torch.autocast(device.type, dtype=dtype)


def clip_sources(node, prefix: str = 'model'):
    """``(dotted key, node)`` of every CLIP source ``dict(model_name,
    pretrained)`` in a model config."""
    if isinstance(node, (dict, ConfigDict)):
        if 'model_name' in node and 'pretrained' in node:
            yield prefix, node
        for k, v in node.items():
            yield from clip_sources(v, f'{prefix}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from clip_sources(v, f'{prefix}.{i}')


def _random_weights(node) -> None:
    """Every CLIP source ``dict(model_name, pretrained)`` → no weights."""
    for _, src in clip_sources(node):
        if src['model_name'] is None:
            raise ValueError(
                '--random-weights needs an architecture name '
                '(model_name) in every CLIP source')
        src['pretrained'] = None


def build(cfg: Config, args) -> torch.nn.Module:
    """The config's model (ExCEL or CLIP-ES) with the script's options."""
    from mmseg.registry import MODELS
    m = cfg.model
    if args.random_weights:
        _random_weights(m)
        tse = m.get('text_head', {}).get('tse')
        if tse:  # a bank of random text features is not worth caching
            tse['cache_dir'] = None
    if args.no_tse and 'text_head' in m:
        m.text_head.tse = None
    return MODELS.build(m)


def num_fg_classes(model) -> int:
    """Foreground class count of an ExCEL or CLIP-ES model."""
    if hasattr(model, 'text_head'):
        return model.text_head.num_fg
    return model.num_fg


def random_batch(batch: int,
                 size: Sequence[int],
                 num_fg: int,
                 device,
                 classes_per_image: int = 2,
                 seed: int = 0) -> Tuple[torch.Tensor, list]:
    """Normalised random images and data samples with
    ``classes_per_image`` image-level labels each."""
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    size = tuple(size)
    imgs = torch.randn(batch, 3, *size, generator=g).to(device)
    samples = []
    for _ in range(batch):
        lab = torch.zeros(num_fg)
        lab[torch.randperm(num_fg, generator=g)[:classes_per_image]] = 1
        s = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size))
        s.gt_cls_label = lab.to(device)
        samples.append(s)
    return imgs, samples


def random_mask_batch(batch: int,
                      size: Sequence[int],
                      num_classes: int,
                      device,
                      classes_per_image: int = 2,
                      seed: int = 0) -> Tuple[torch.Tensor, list]:
    """Normalised random images and data samples whose ``gt_sem_seg`` is a
    random pseudo mask: background, ``classes_per_image`` foreground
    blocks, a 4-pixel border of ignored pixels (255)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    h, w = size
    imgs = torch.randn(batch, 3, h, w, generator=g).to(device)
    samples = []
    for _ in range(batch):
        mask = torch.zeros(1, h, w, dtype=torch.long)
        fg = 1 + torch.randperm(num_classes - 1, generator=g)
        for k, c in enumerate(fg[:classes_per_image].tolist()):
            x0 = k * w // max(classes_per_image, 1)
            mask[:, h // 4:3 * h // 4, x0:x0 + w // (2 * classes_per_image)
                 + 1] = c
        mask[:, :4], mask[:, -4:], mask[..., :4], mask[..., -4:] = (255, ) * 4
        s = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=mask.to(device))
        samples.append(s)
    return imgs, samples


def is_weakclip(model) -> bool:
    return all(hasattr(model, a) for a in ('adapter', 'context_decoder',
                                            'seg_losses'))


def benchmark_weakclip(model, cfg: Config, args,
                       device: torch.device) -> Dict[str, float]:
    """Stage table of WeakCLIP training steps (see the module doc);
    returns the mean seconds per stage."""
    batch = args.batch_size or cfg.train_dataloader.batch_size
    size = tuple(args.size or model.data_preprocessor.size or
                 cfg.get('crop_size', (512, 512)))
    num_classes = model.decode_head.num_classes
    imgs, samples = random_mask_batch(batch, size, num_classes, device,
                                      args.classes_per_image)
    optim = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-6)
    timer = StageTimer(device)
    for name, obj, attr in (
        ('CLIP image encoder', model.backbone, 'forward'),
        ('pyramid adapter', model.adapter, 'forward'),
        ('text encoder', model.text_encoder, 'forward'),
        ('co-attention + score map', model, 'match'),
        ('decoder (FPN + head)', model.neck, 'forward'),
        ('decoder (FPN + head)', model.decode_head, 'forward'),
        ('CRF (loss)', model.seg_loss, 'crf_posterior'),
        ('seg losses', model, 'seg_losses'),
        ('identity head loss', model, 'identity_losses'),
    ):
        timer.wrap(obj, attr, name)
    reset_peak_memory(device)
    losses = time_steps(model, timer, imgs, samples, optim, args.iters,
                        args.warmup, args.amp, reference=False)
    if not all(torch.isfinite(torch.tensor(losses))):
        raise FloatingPointError(f'non-finite WeakCLIP loss: {losses}')
    res = {k: timer.mean(k) for k in timer.times}
    res['seeding + boundary'] = res.pop('seg losses') - res['CRF (loss)']
    res['other'] = res['step (total)'] - sum(
        res.get(s, 0.0) for s in WEAKCLIP_STAGES)
    print(f'config: {args.config}')
    print(f'device: {device}, batch {batch}, size {size}, classes '
          f'{num_classes}, threads {torch.get_num_threads()}, amp '
          f'{args.amp}, random weights {args.random_weights}, iters '
          f'{args.iters} (+{args.warmup} warm-up)')
    header = f'{"stage (s/iter)":<28}{"WeakCLIP":>14}{"share":>8}'
    print(header)
    print('-' * len(header))
    total = max(res['step (total)'], 1e-9)
    for s in WEAKCLIP_STAGES + ('other', 'step (total)'):
        print(f'{s:<28}{res.get(s, 0.0):>13.4f}s'
              f'{100 * res.get(s, 0.0) / total:>7.1f}%')
    top = max(WEAKCLIP_STAGES, key=lambda s: res.get(s, 0.0))
    print(f'largest stage: {top}')
    print(f'peak memory (training steps): {peak_memory_mb(device):.0f} MiB '
          f'[{memory_label(device)}]')
    return res


def get_device(name: Optional[str]) -> torch.device:
    return torch.device(name or (
        'cuda' if torch.cuda.is_available() else 'cpu'))


def load_config(args) -> Config:
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401
    import mmseg_excel.models.segmentors.clip_es  # noqa: F401  (CLIPES)
    return cfg


def clip_forward(model, imgs, amp: bool) -> None:
    """The frozen CLIP forward alone (the targets' reference).

    Always in fp32: the training step runs the frozen CLIP in fp32 under
    ``--amp`` too (only the decoder is autocast), so a bf16 reference would
    make the ratio compare two different forwards. ``amp`` is accepted for
    the call sites and ignored.
    """
    del amp
    with torch.no_grad():
        model.backbone(imgs)


def plain_clip_forward(backbone, imgs) -> None:
    """The same weights through open_clip's own blocks
    (``nn.MultiheadAttention`` with ``need_weights=False``): no SVC, no
    attention weights, no per-layer features kept — what a plain CLIP
    forward of the model costs, next to which our forward is reported."""
    with torch.no_grad():
        x, _ = backbone.embed(imgs)
        for block in backbone.resblocks:
            x = block(x)
        backbone.project(x)


def time_steps(model, timer: StageTimer, imgs, samples, optim, iters: int,
               warmup: int, amp: bool, reference: bool = True) -> List[float]:
    """Run ``warmup + iters`` optimiser steps, each right after a frozen
    CLIP forward alone (the reference; ``reference=False``: none); returns
    the timed losses."""
    losses_seen = []
    bar = ProgressBar(warmup + iters, file=sys.stdout)
    for i in range(warmup + iters):
        if reference:
            with timer.stage('open_clip forward (plain)'):
                plain_clip_forward(model.backbone, imgs)
            with timer.stage('CLIP forward alone'):
                clip_forward(model, imgs, amp)
        with timer.stage('step (total)'):
            with amp_context(imgs.device, amp):
                losses = model.loss(imgs, samples)
            loss = sum(v for k, v in losses.items() if 'loss' in k)
            with timer.stage('backward + step'):
                optim.zero_grad()
                loss.backward()
                optim.step()
        if i >= warmup:
            losses_seen.append(float(loss.detach()))
        timer.end_iter(keep=i >= warmup)
        bar.update()
    sys.stdout.write('\n')
    return losses_seen


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    """Print the stage table before and after the LVC switch; returns the
    mean seconds per stage of each phase."""
    args = parse_args(argv)
    cfg = load_config(args)
    device = get_device(args.device)
    model = build(cfg, args).to(device)
    model.train()
    if is_weakclip(model):
        return {'WeakCLIP': benchmark_weakclip(model, cfg, args, device)}
    batch = args.batch_size or cfg.train_dataloader.batch_size
    size = tuple(args.size or cfg.get('crop_size', (320, 320)))
    imgs, samples = random_batch(batch, size, num_fg_classes(model), device,
                                 args.classes_per_image)
    optim = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-4)
    frozen = [n for n, p in model.backbone.named_parameters()
              if p.requires_grad]
    if frozen:
        raise RuntimeError(f'CLIP parameters require grad: {frozen[:3]}')

    timer = StageTimer(device)
    reset_peak_memory(device)
    clip_forward(model, imgs, args.amp)  # its memory, before any step
    mem = {'CLIP forward alone': peak_memory_mb(device)}

    for name, obj, attr in (
        ('CLIP forward (+SVC)', model, 'extract_feat'),
        ('patch-text maps', model.cam_head, 'forward'),
        ('LVC re-forward', model.backbone, 'forward_lvc'),
        ('refinement (CAA)', model.pseudo_labeler.affinity, 'forward'),
        ('PAR', model.pseudo_labeler.par, 'forward'),
        ('decoder', model.decode_head, 'forward'),
        ('losses', model.decode_head, 'loss_by_feat'),
    ):
        timer.wrap(obj, attr, name)

    phases = [('before LVC', 0)]
    if model.lvc_start_iter is not None:
        phases.append(('after LVC', model.lvc_start_iter))
    results: Dict[str, Dict[str, float]] = {}
    for phase, it in phases:
        model.set_train_iter(it)
        timer.times.clear()
        reset_peak_memory(device)
        losses = time_steps(model, timer, imgs, samples, optim, args.iters,
                            args.warmup, args.amp)
        if not all(torch.isfinite(torch.tensor(losses))):
            raise FloatingPointError(f'non-finite loss {phase}: {losses}')
        res = {k: timer.mean(k) for k in timer.times}
        res['other'] = res['step (total)'] - sum(
            res.get(s, 0.0) for s in TRAIN_STAGES)
        res['ratios'] = [
            a / max(c, 1e-9) for a, c in zip(timer.times['step (total)'],
                                             timer.times['CLIP forward alone'])
        ]
        results[phase] = res
        mem[phase] = peak_memory_mb(device)

    print(f'config: {args.config}')
    print(f'device: {device}, batch {batch}, size {size}, '
          f'threads {torch.get_num_threads()}, amp {args.amp}, '
          f'random weights {args.random_weights}, '
          f'iters {args.iters} (+{args.warmup} warm-up)')
    header = f'{"stage (s/iter)":<24}' + ''.join(f'{p:>14}' for p in results)
    print(header)
    print('-' * len(header))
    for s in TRAIN_STAGES + ('other', 'step (total)'):
        print(f'{s:<24}' + ''.join(f'{results[p].get(s, 0.0):>13.4f}s'
                                   for p in results))
    for ref in ('CLIP forward alone', 'open_clip forward (plain)'):
        print(f'{ref:<24}' + ''.join(f'{results[p][ref]:>13.4f}s'
                                     for p in results))
    for p in results:
        ours = results[p]['CLIP forward alone']
        plain = results[p]['open_clip forward (plain)']
        print(f'CLIP forward / plain open_clip forward ({p}): '
              f'{ours / max(plain, 1e-9):.2f}x (SVC dual path and the '
              'attention maps CAA reads)')
    for p in results:
        ratio = results[p]['step (total)'] / max(
            results[p]['CLIP forward alone'], 1e-9)
        target = TARGETS[p]
        verdict = ('met' if ratio <= target else
                   f'MISSED by {ratio / target - 1:.0%}')
        top = max(TRAIN_STAGES, key=lambda s: results[p].get(s, 0.0))
        per_iter = ', '.join(f'{r:.2f}' for r in results[p]['ratios'])
        print(f'step / CLIP forward ({p}): {ratio:.2f}x '
              f'(target <= {target}x: {verdict}; largest stage: {top}; '
              f'per iteration: {per_iter})')
    for k, v in mem.items():
        print(f'peak memory ({k}): {v:.0f} MiB [{memory_label(device)}]')
    return results


if __name__ == '__main__':
    main()

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

Example::

    python tools/analysis_tools/benchmark_pseudo_labels.py \
        configs/excel/excel_clip-vit-b16_training-free_voc12aug-320x320.py \
        --random-weights --batch-size 4 --crf
    python tools/analysis_tools/benchmark_pseudo_labels.py \
        configs/clip_es/clip-es_clip-vit-b16_training-free_voc12aug.py \
        --random-weights --batch-size 4 --size 375 500 --gradcam-per-class
"""
import argparse
import os.path as osp
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.utils import ProgressBar

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_train import (StageTimer, build, get_device,  # noqa: E402
                             load_config, memory_label, num_fg_classes,
                             peak_memory_mb, random_batch)


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
    labels = []
    for j, image in enumerate(rgb):
        # per-image maps before PAR at the original size, with their keys
        scores = out['cams_with_bkg'][j].float().cpu()
        keys = out['keys'][j].cpu()
        prob = crf([image], [scores])[0]
        labels.append(keys[prob.argmax(0)].numpy())
    return labels


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


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Print images/s by stage; returns the mean seconds per batch."""
    args = parse_args(argv)
    cfg = load_config(args)
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
        crf = MODELS.build(cfg.crf)

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

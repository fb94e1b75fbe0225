# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Images/s and peak memory of training-free pseudo-label generation.

Times ``model.generate_pseudo_labels`` on random images of the configured
size, stage by stage (CLIP forward, maps, affinity, PAR), and the dense CRF
when ``--crf`` is given (pydensecrf runs on the CPU, one image at a time).

Example::

    python tools/analysis_tools/benchmark_pseudo_labels.py \
        configs/excel/excel_clip-vit-b16_training-free_voc12aug-320x320.py \
        --random-weights --batch-size 4 --crf
"""
import argparse
import os.path as osp
import sys
from collections import defaultdict
from typing import List, Optional

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_train import (StageTimer, build, peak_memory_mb,  # noqa: E402
                             random_batch)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--size', type=int, nargs=2, default=None,
                   help='image H W (default: the config crop size)')
    p.add_argument('--device', default=None)
    p.add_argument('--crf', action='store_true')
    p.add_argument('--random-weights', action='store_true')
    p.add_argument('--no-tse', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    """Print images/s by stage."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401
    from mmseg.registry import MODELS
    device = torch.device(args.device or (
        'cuda' if torch.cuda.is_available() else 'cpu'))
    model = build(cfg, args).to(device).eval()
    size = tuple(args.size or cfg.get('crop_size', (320, 320)))
    imgs, samples = random_batch(model, args.batch_size, size,
                                 model.text_head.num_fg, device)
    crf = MODELS.build(cfg.crf) if args.crf else None

    timer = StageTimer(device)
    for name, obj, attr in (
        ('CLIP forward (+SVC)', model, 'extract_feat'),
        ('patch-text maps', model.cam_head, 'forward'),
        ('LVC re-forward', model.backbone, 'forward_lvc'),
        ('decoder', model.decode_head, 'forward'),
        ('affinity (CAA)', model.pseudo_labeler.affinity, 'forward'),
        ('PAR', model.pseudo_labeler.par, 'forward'),
    ):
        if hasattr(obj, attr):
            timer.wrap(obj, attr, name)
    rgb = [np.random.default_rng(i).integers(0, 255, (*size, 3), np.uint8)
           for i in range(args.batch_size)]
    for i in range(args.warmup + args.iters):
        with timer.stage('total'):
            with torch.no_grad():
                out = model.generate_pseudo_labels(imgs, samples)
            if crf is not None:
                with timer.stage('CRF'):
                    probs = [out['cams_with_bkg'][j].float().cpu()
                             for j in range(args.batch_size)]
                    crf(rgb, probs)
        if i >= args.warmup:
            timer.commit()
        else:
            timer._current = defaultdict(float)
    b = args.batch_size
    print(f'config: {args.config}\ndevice: {device}, batch {b}, size {size}, '
          f'threads {torch.get_num_threads()}')
    print(f'{"stage":<22}{"s/batch":>10}{"images/s":>11}')
    for name in list(timer.times):
        t = timer.mean(name)
        print(f'{name:<22}{t:>10.3f}{b / max(t, 1e-9):>11.2f}')
    print(f'peak memory: {peak_memory_mb(device):.0f} MiB')


if __name__ == '__main__':
    main()

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Train a segmentor with mmengine's Runner (mmseg's flags).

Example::

    python tools/train.py configs/excel/excel_clip-vit-b16_1xb4-30k_voc12aug-320x320.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume --amp
"""
import argparse
import logging
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

# Make `mmseg_excel` importable when the repository is used without install.
sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))


def parse_args() -> argparse.Namespace:
    """Command-line arguments, as mmseg's ``tools/train.py`` has them."""
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        default=None,
        help='resume from the latest checkpoint in the work dir, or from the '
        'given checkpoint path')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic mixed precision training (bf16 where the '
        'device supports it)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def amp_dtype() -> str:
    """bf16 where the device supports it, else fp16 (CUDA) / bf16 (CPU)."""
    import torch
    if torch.cuda.is_available():
        return 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
    return 'bfloat16'


def main() -> None:
    """Build the config and run training."""
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper in ('AmpOptimWrapper', 'AnyDeviceAmpOptimWrapper'):
            print_log('AMP training is already enabled in your config.',
                      logger='current', level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type '
                f'is `OptimWrapper` but got {optim_wrapper}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.dtype = amp_dtype()
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
        from mmseg_excel.engine.optimizers.amp_optim_wrapper import \
            accelerator_available
        if (cfg.optim_wrapper.type == 'AmpOptimWrapper'
                and not accelerator_available()):
            # mmengine's AmpOptimWrapper asserts a GPU/NPU/MLU; on the CPU
            # the plugin's subclass autocasts to bf16 without loss scaling
            cfg.optim_wrapper.type = 'AnyDeviceAmpOptimWrapper'
            cfg.optim_wrapper.dtype = 'bfloat16'

    # the torch RNG state travels in checkpoints so that --resume continues
    # exactly (mmseg_excel/engine/hooks/rng_state_hook.py)
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(h.get('type') == 'ResumeRNGHook' for h in hooks):
        hooks.append(dict(type='ResumeRNGHook'))
    # stop at the first NaN/Inf loss, before its weights can be saved
    # (mmseg_excel/engine/hooks/finite_loss_hook.py)
    if not any(h.get('type') == 'FiniteLossHook' for h in hooks):
        hooks.append(dict(type='FiniteLossHook'))
    cfg.custom_hooks = hooks

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    from mmseg_excel.utils.dist import setup_cpu_dist, teardown_dist
    setup_cpu_dist(cfg)  # torchrun on a machine without CUDA: gloo
    runner = Runner.from_cfg(cfg)
    runner.train()
    teardown_dist()


if __name__ == '__main__':
    main()

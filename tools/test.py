# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Test (and evaluate) a segmentor checkpoint with mmengine's Runner.

Example::

    python tools/test.py CONFIG CHECKPOINT --tta --out work_dirs/preds

``--show-dir DIR`` saves one picture per test image (image | prediction |
ground truth, ``WSSSVisualizer``) under ``DIR/vis_data/vis_image``.
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))


def parse_args() -> argparse.Namespace:
    """Command-line arguments, as mmseg's ``tools/test.py`` has them."""
    parser = argparse.ArgumentParser(
        description='Test (and eval) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='directory where painted PNG predictions (class ids) are saved')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. If specified, '
        'it will be automatically saved to work_dir/timestamp/show_dir')
    parser.add_argument(
        '--show-interval',
        type=int,
        default=1,
        help='draw every N-th test batch for --show/--show-dir (mmseg\'s '
        'hook default is 50; here every batch)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
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
    parser.add_argument(
        '--tta', action='store_true', help='test-time augmentation '
        '(multi-scale + flip, and CRF where the config sets it)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def trigger_visualization_hook(cfg: Config, args: argparse.Namespace):
    """Turn on mmseg's SegVisualizationHook for ``--show``/``--show-dir``."""
    default_hooks = cfg.default_hooks
    if 'visualization' in default_hooks:
        visualization_hook = default_hooks['visualization']
        visualization_hook['draw'] = True
        visualization_hook['interval'] = args.show_interval
        if args.show:
            visualization_hook['show'] = True
            visualization_hook['wait_time'] = args.wait_time
        if args.show_dir:
            visualizer = cfg.visualizer
            visualizer['save_dir'] = args.show_dir
    else:
        raise RuntimeError(
            'VisualizationHook must be included in default_hooks. '
            'refer to usage "visualization=dict(type=\'VisualizationHook\')"')
    return cfg


def main() -> None:
    """Build the config and run the test loop."""
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
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)

    if args.tta:
        if 'tta_pipeline' not in cfg or 'tta_model' not in cfg:
            raise ValueError(f'{args.config} defines no tta_pipeline / '
                             'tta_model: TTA is not configured for it')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model

    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True

    from mmseg_excel.utils.dist import setup_cpu_dist, teardown_dist
    setup_cpu_dist(cfg)  # torchrun on a machine without CUDA: gloo
    runner = Runner.from_cfg(cfg)
    runner.test()
    teardown_dist()


if __name__ == '__main__':
    main()

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Draw the per-class maps and the pseudo label of any image.

For each image: the image and its pseudo label, one row of heat maps per map
kind (the CAMs — LVC maps with a trained ExCEL checkpoint — and the maps
refined by CAA + PAR), titled with the class names (``WSSSVisualizer``,
docs/visualization.md). The classes are the image-level labels given with
``--classes`` (names of the config's dataset); without it every foreground
class is drawn.

Example (the Toy World)::

    python tools/analysis_tools/visualize_cams.py \\
        configs/toy_world/excel_toy-clip_1xb8-1k_toy-world-96x96.py \\
        data/toy_world/JPEGImages/test_000000.png --out-dir work_dirs/cams \\
        --classes apple star
"""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
from mmseg_excel.datasets.transforms.loading import read_rgb_image  # noqa: E402,E501


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', help='method config (ExCEL or CLIP-ES)')
    p.add_argument('images', nargs='+', help='image file(s)')
    p.add_argument('--out-dir', required=True, help='folder of the PNGs')
    p.add_argument(
        '--checkpoint',
        help='trained ExCEL weights: LVC maps and the decoder affinity')
    p.add_argument(
        '--classes',
        nargs='+',
        help='image-level labels (class names of the config); default: all '
        'foreground classes')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 …')
    p.add_argument(
        '--max-maps', type=int, default=8, help='maps drawn per row')
    p.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings (key=value)')
    return p.parse_args(argv)


def class_ids(names: Optional[List[str]], classes: tuple) -> List[int]:
    """Dataset ids of ``names`` (all foreground classes when None)."""
    if not names:
        return list(range(1, len(classes)))
    unknown = [n for n in names if n not in classes[1:]]
    if unknown:
        raise ValueError(f'unknown class name(s) {unknown}; the config\'s '
                         f'classes are {list(classes[1:])}')
    return sorted(classes.index(n) for n in names)


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Draw every image; returns the written files."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    from mmseg_excel.apis import (cam_classes, config_classes, infer_cams,
                                  init_wsss_model)
    from mmseg_excel.visualization import WSSSVisualizer
    classes, palette = config_classes(cfg)
    ids = class_ids(args.classes, classes)
    for path in args.images:
        if not osp.isfile(path):
            raise FileNotFoundError(f'image not found: {path}')
    model = init_wsss_model(cfg, args.checkpoint, args.device)
    vis = WSSSVisualizer(name='visualize_cams', max_maps=args.max_maps)
    vis.set_dataset_meta(list(classes), palette)
    os.makedirs(args.out_dir, exist_ok=True)
    kind = 'LVC' if (cfg.model.get('test_cfg') or {}).get('use_decoder') \
        else 'CAM'
    written = []
    bar = ProgressBar(len(args.images), file=sys.stdout)
    for path in args.images:
        try:
            image = read_rgb_image(path)
        except OSError as e:
            raise OSError(f'cannot read image {path}: {e}') from e
        out = infer_cams(model, cfg, path, ids, len(classes))
        label = out['pseudo_labels'].cpu().numpy()[:image.shape[0], :
                                                   image.shape[1]]
        names = cam_classes(out)
        k = len(names)
        h, w = image.shape[:2]
        maps = {kind: out['cams_highres'][:k, :h, :w].float().cpu()}
        if out.get('refined_cams') is not None:
            maps['refined'] = out['refined_cams'][1:].float().cpu()
        name = osp.splitext(osp.basename(path))[0] + '.png'
        target = osp.join(args.out_dir, name)
        vis.add_wsss_sample(
            name, image, out_file=target, maps=maps, map_classes=names,
            pseudo_label=label)
        written.append(target)
        bar.update()
    sys.stdout.write('\n')
    print(f'{len(written)} picture(s) in {args.out_dir}')
    return written


if __name__ == '__main__':
    main()

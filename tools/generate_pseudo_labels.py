# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Training-free pseudo labels (ExCEL §10, CLIP-ES §6) for a dataset split.

Runs a config's model over a dataloader of the config (batched, any device)
and writes one PNG per image (VOC palette, class ids, 255 = ignored). It

* resumes: images whose PNG exists are not recomputed (their PNG is read back
  for the metrics), and every PNG is written atomically (temp file + rename);
* shows progress (mmengine's progress bar);
* optionally applies dense CRF (``--crf``; the ``crf`` entry of the config);
* prints mIoU with mmseg's ``IoUMetric`` (per-class table) when the split has
  ground truth;
* saves a few side-by-side pictures (image | CAM per class | pseudo mask |
  ground truth) under ``<out-dir>/vis``.

Example::

    python tools/generate_pseudo_labels.py \
        configs/excel/excel_clip-vit-b16_training-free_voc12aug-320x320.py \
        --out-dir data/VOCdevkit/VOC2012/pseudo_labels/excel --split train
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmengine.utils import ProgressBar
from PIL import Image

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))


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
    parser.add_argument('--crf', action='store_true', help='dense CRF')
    parser.add_argument(
        '--num-vis', type=int, default=4, help='pictures to save')
    parser.add_argument(
        '--max-images', type=int, default=None, help='stop after N images')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings (key=value)')
    return parser.parse_args(argv)


def voc_palette(n: int = 256) -> List[int]:
    """The PASCAL VOC colour map as a flat PIL palette."""
    pal = []
    for i in range(n):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


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


def dataloader_cfg(cfg: Config, split: str, batch_size: Optional[int]):
    """The dataloader config for ``split`` (no shuffling, finite)."""
    key = f'{split}_dataloader'
    if key not in cfg:
        raise KeyError(f'config has no {key}; choose --split among '
                       f'{[k[:-11] for k in cfg if k.endswith("_dataloader")]}')
    dl = cfg[key].copy()
    dl['sampler'] = dict(type='DefaultSampler', shuffle=False)
    dl['persistent_workers'] = False
    if batch_size is not None:
        dl['batch_size'] = batch_size
    return dl


def label_to_original(label: torch.Tensor, meta: dict) -> np.ndarray:
    """Undo padding and resizing of the network input (nearest)."""
    img_h, img_w = meta['img_shape'][:2]
    label = label[:img_h, :img_w]
    ori_h, ori_w = meta['ori_shape'][:2]
    if (img_h, img_w) != (ori_h, ori_w):
        label = F.interpolate(
            label[None, None].float(), size=(ori_h, ori_w),
            mode='nearest')[0, 0].long()
    if meta.get('flip', False):
        raise ValueError('generate_pseudo_labels needs an un-flipped '
                         'pipeline (no RandomFlip in the dataloader)')
    return label.cpu().numpy()


def save_vis(path: str, image: np.ndarray, cams: Optional[np.ndarray],
             pseudo: np.ndarray, gt: Optional[np.ndarray],
             palette: List[int]) -> None:
    """image | CAMs | pseudo mask | ground truth, side by side."""
    pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    h, w = pseudo.shape
    panels = [np.asarray(Image.fromarray(image).resize((w, h)))]
    if cams is not None:
        for cam in cams:
            cam = np.asarray(
                Image.fromarray((cam * 255).astype(np.uint8)).resize((w, h)),
                dtype=np.float32) / 255
            heat = np.stack([cam, 1 - np.abs(2 * cam - 1), 1 - cam], -1)
            panels.append((0.5 * panels[0] + 127.5 * heat).astype(np.uint8))
    panels.append(pal[pseudo])
    if gt is not None:
        panels.append(pal[gt])
    Image.fromarray(np.concatenate(panels, axis=1)).save(path)


def main(argv: Optional[List[str]] = None) -> dict:
    """Generate, save and (when GT exists) evaluate pseudo labels."""
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmseg_excel  # noqa: F401
    from mmseg.evaluation import IoUMetric
    from mmseg.registry import MODELS

    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    model = MODELS.build(cfg.model).to(device).eval()
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu',
                        strict=False)
    if not hasattr(model, 'generate_pseudo_labels'):
        raise TypeError(f'{type(model).__name__} cannot generate pseudo '
                        'labels (no generate_pseudo_labels method)')
    crf = None
    if args.crf:
        if 'crf' not in cfg:
            raise KeyError(f'--crf given but {args.config} has no `crf`')
        crf = MODELS.build(cfg.crf)

    loader = Runner.build_dataloader(
        dataloader_cfg(cfg, args.split, args.batch_size))
    dataset = loader.dataset
    classes = dataset.metainfo['classes']
    palette = voc_palette()
    os.makedirs(args.out_dir, exist_ok=True)
    vis_dir = osp.join(args.out_dir, 'vis')
    if args.num_vis:
        os.makedirs(vis_dir, exist_ok=True)

    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dataset.metainfo
    has_gt = False
    n_total = len(dataset) if args.max_images is None else min(
        len(dataset), args.max_images)
    bar = ProgressBar(n_total)
    done = computed = vis_saved = 0
    for batch in loader:
        if done >= n_total:
            break
        samples = batch['data_samples']
        names = [
            osp.splitext(osp.basename(s.img_path))[0] + '.png'
            for s in samples
        ]
        paths = [osp.join(args.out_dir, n) for n in names]
        todo = [i for i, p in enumerate(paths) if not osp.exists(p)]
        labels = {}
        cams = None
        if todo:
            sub = dict(
                inputs=[batch['inputs'][i] for i in todo],
                data_samples=[samples[i] for i in todo])
            data = model.data_preprocessor(sub, False)
            with torch.no_grad():
                out = model.generate_pseudo_labels(data['inputs'],
                                                   data['data_samples'])
            cams = out.get('cams_highres')
            for j, i in enumerate(todo):
                meta = data['data_samples'][j].metainfo
                if crf is not None:
                    lab = crf_label(crf, out, j, meta, samples[i])
                else:
                    lab = label_to_original(out['pseudo_labels'][j], meta)
                write_png_atomic(paths[i], lab, palette)
                labels[i] = lab
                computed += 1
        for i, s in enumerate(samples):
            if done >= n_total:
                break
            lab = labels.get(i)
            if lab is None:  # resumed: read what an earlier run wrote
                lab = np.asarray(Image.open(paths[i]))
            if 'gt_sem_seg' in s:
                has_gt = True
                gt = s.gt_sem_seg.data[0]
                pred = torch.from_numpy(lab.astype(np.int64))
                if pred.shape != gt.shape:
                    raise ValueError(
                        f'{s.img_path}: pseudo label {tuple(pred.shape)} vs '
                        f'ground truth {tuple(gt.shape)}')
                metric.results.append(
                    IoUMetric.intersect_and_union(pred, gt, len(classes),
                                                  metric.ignore_index))
            if vis_saved < args.num_vis and i in labels:
                img = np.asarray(Image.open(s.img_path).convert('RGB'))
                j = todo.index(i)
                c = None
                if cams is not None:
                    c = cams[j].float().cpu().numpy().clip(0, 1)
                gt_np = (s.gt_sem_seg.data[0].numpy().astype(np.uint8)
                         if 'gt_sem_seg' in s else None)
                save_vis(
                    osp.join(vis_dir, names[i]), img, c, lab, gt_np, palette)
                vis_saved += 1
            done += 1
            bar.update()
    sys.stdout.write('\n')
    print(f'pseudo labels: {done} images ({computed} computed, '
          f'{done - computed} already present) in {args.out_dir}')
    metrics = {}
    if has_gt:
        metrics = metric.compute_metrics(metric.results)
        print(f'pseudo-label mIoU: {metrics["mIoU"]:.2f}')
    return metrics


def crf_label(crf, out: dict, j: int, meta: dict, sample) -> np.ndarray:
    """Dense CRF on [background; CAMs] at the original resolution."""
    valid = torch.cat([out['valid'].new_ones(1), out['valid'][j]])
    scores = out['cams_with_bkg'][j][valid]  # [bg; CAMs] (1 + K_i, H, W)
    keys = torch.cat([out['class_idx'].new_zeros(1),
                      out['class_idx'][j] + 1])[valid]
    img_h, img_w = meta['img_shape'][:2]
    scores = scores[:, :img_h, :img_w]
    ori_h, ori_w = meta['ori_shape'][:2]
    scores = F.interpolate(
        scores[None].float(), size=(ori_h, ori_w), mode='bilinear',
        align_corners=False)[0]
    image = np.asarray(Image.open(sample.img_path).convert('RGB'))
    prob = crf([image], [scores.cpu()])[0]
    return keys.cpu()[prob.argmax(0)].numpy()


if __name__ == '__main__':
    main()

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""configs/baselines: mmseg segmenters trained on pseudo masks (CLIP_ES.md §7).

Checks that every baseline config loads and builds (weights offline), that its
training pipeline yields the *pseudo* mask as ``gt_sem_seg`` while validation
yields the ground truth, that a missing pseudo mask is reported by file name,
and (slow) that tools/train.py trains tiny variants for a few iterations on
CPU with a finite loss.
"""
import copy
import os
import os.path as osp
import re
import subprocess
import sys
from glob import glob
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope
from PIL import Image

from mmseg_excel.testing.tiny_datasets import make_tiny_voc, write_mask

ROOT = Path(__file__).resolve().parents[2]
BASELINES = sorted(glob(str(ROOT / 'configs' / 'baselines' / '*.py')))
VOC_EXCEL = str(ROOT / 'configs' / 'baselines' /
                'deeplabv3plus_r101-d8_4xb4-20k_voc12aug-excel-pl-512x512.py')
SEGFORMER_EXCEL = str(
    ROOT / 'configs' / 'baselines' /
    'segformer_mit-b2_4xb4-40k_voc12aug-excel-pl-512x512.py')


def _offline(node):
    """Drop pretrained weight sources (no downloads), in place."""
    if isinstance(node, (dict, ConfigDict)):
        if isinstance(node.get('pretrained'), str):
            node['pretrained'] = None
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, (dict, ConfigDict)) and \
                init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for value in node.values():
            _offline(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _offline(value)


def _scope():
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401


def _write_pseudo(data, folder='pseudo_labels/excel'):
    """Pseudo masks unlike the GT: class stripes with a 255 band."""
    out = {}
    for k, img_id in enumerate(data['splits']['train_aug']):
        gt = np.array(Image.open(data['mask_paths'][img_id]))
        h, w = gt.shape
        mask = np.zeros((h, w), np.uint8)
        mask[:, :w // 2] = (k % 19) + 2
        mask[h // 3:h // 3 + 4] = 255
        assert not np.array_equal(mask, gt)
        write_mask(osp.join(data['root'], folder, img_id + '.png'), mask,
                   'P' if k % 2 else 'L')
        out[img_id] = mask
    return out


def test_baseline_configs_found():
    names = {osp.basename(p) for p in BASELINES}
    for method in ('excel', 'clip-es'):
        assert ('deeplabv3plus_r101-d8_4xb4-20k_voc12aug-'
                f'{method}-pl-512x512.py') in names
        assert f'segformer_mit-b2_4xb4-40k_voc12aug-{method}-pl-512x512.py' \
            in names
        assert ('deeplabv3plus_r101-d8_4xb4-40k_coco14-'
                f'{method}-pl-512x512.py') in names


@pytest.mark.parametrize(
    'path', BASELINES, ids=[osp.basename(p) for p in BASELINES])
def test_baseline_config(path):
    cfg = Config.fromfile(path)
    assert 'mmseg_excel' in cfg.custom_imports['imports']
    method = 'clip-es' if '-clip-es-pl' in path else 'excel'
    num_classes = 81 if '_coco14-' in path else 21
    train_ds = cfg.train_dataloader.dataset
    assert train_ds.pseudo_seg_map_dir == f'pseudo_labels/{method}'
    assert train_ds.type == ('COCOWSSSDataset'
                             if num_classes == 81 else 'VOCWSSSDataset')
    # training target = pseudo mask, loaded before any geometric transform
    types = [t['type'] for t in train_ds.pipeline]
    assert types[:2] == ['LoadImageFromFile', 'LoadPseudoSegMap']
    assert train_ds.pipeline[1]['as_gt'] is True
    assert 'LoadAnnotations' not in types
    crop = [t for t in train_ds.pipeline if t['type'] == 'RandomCrop'][0]
    assert tuple(crop['crop_size']) == tuple(cfg.crop_size) == (512, 512)
    assert tuple(cfg.model.data_preprocessor.size) == tuple(cfg.crop_size)
    # validation and test on the ground truth
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.get('pseudo_seg_map_dir') is None
        assert 'LoadAnnotations' in [t['type'] for t in loader.dataset.pipeline]
    assert cfg.val_evaluator['type'] == 'IoUMetric'
    # model builds on CPU, 255 ignored by every head
    _scope()
    from mmseg.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    _offline(model_cfg)
    model = MODELS.build(model_cfg)
    heads = [model.decode_head]
    if getattr(model, 'auxiliary_head', None) is not None:
        heads.append(model.auxiliary_head)
    for head in heads:
        assert head.num_classes == num_classes
        assert head.ignore_index == 255
        assert head.conv_seg.out_channels == num_classes
        _check_loss_ignores_void(head, num_classes)


def _check_loss_ignores_void(head, num_classes):
    """The head's loss is the mean over kept pixels, whatever the 255 share.

    A pseudo mask with half its pixels ignored must give the loss of its kept
    pixels alone, not half of it (mmseg's ``avg_non_ignore=False`` default).
    """
    import torch
    import torch.nn.functional as F
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, num_classes, 8, 8, generator=gen)
    labels = torch.randint(0, num_classes, (2, 8, 8), generator=gen)
    labels[:, :, :4] = 255       # half of every image ignored
    labels[1, :2, 4:] = 255      # and a bit more in the second
    samples = []
    for lab in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=lab[None])
        samples.append(sample)
    losses = head.loss_by_feat(logits, samples)
    weight = head.loss_decode.loss_weight
    kept = labels != 255
    per_pixel = F.cross_entropy(
        logits, labels.clamp(max=num_classes - 1), reduction='none')
    expected = weight * per_pixel[kept].mean()
    torch.testing.assert_close(
        losses['loss_ce'], expected, rtol=1e-5, atol=1e-6)


def _only(pipeline, keep):
    return [t for t in pipeline if t['type'] in keep]


def test_pipelines_pseudo_for_train_gt_for_val(tmp_path):
    _scope()
    from mmseg.registry import DATASETS
    data = make_tiny_voc(str(tmp_path / 'voc'), num_train=4, num_val=2)
    pseudo = _write_pseudo(data)
    cfg = Config.fromfile(VOC_EXCEL)
    train = copy.deepcopy(cfg.train_dataloader.dataset)
    train.data_root = data['root']
    # deterministic part of the config pipeline: exact equality
    train.pipeline = _only(
        train.pipeline,
        {'LoadImageFromFile', 'LoadPseudoSegMap', 'PackSegInputs'})
    ds = DATASETS.build(train)
    assert len(ds) == len(pseudo)
    for i in range(len(ds)):
        sample = ds[i]
        img_id = osp.splitext(osp.basename(sample['data_samples'].img_path))[0]
        got = sample['data_samples'].gt_sem_seg.data[0].numpy()
        np.testing.assert_array_equal(got, pseudo[img_id])
        assert (got == 255).any()
    # full random pipeline: labels come only from the pseudo mask
    full = copy.deepcopy(cfg.train_dataloader.dataset)
    full.data_root = data['root']
    ds = DATASETS.build(full)
    for i in range(len(ds)):
        sample = ds[i]
        img_id = osp.splitext(osp.basename(sample['data_samples'].img_path))[0]
        got = sample['data_samples'].gt_sem_seg.data[0].numpy()
        assert set(np.unique(got)) <= set(np.unique(pseudo[img_id]))
        assert max(got.shape) <= 512
        assert got.shape == tuple(sample['inputs'].shape[1:])
    # validation: the ground truth at the original resolution
    val = copy.deepcopy(cfg.val_dataloader.dataset)
    val.data_root = data['root']
    ds = DATASETS.build(val)
    assert len(ds) == len(data['splits']['val'])
    for i in range(len(ds)):
        sample = ds[i]
        img_id = osp.splitext(osp.basename(sample['data_samples'].img_path))[0]
        got = sample['data_samples'].gt_sem_seg.data[0].numpy()
        gt = np.array(Image.open(data['mask_paths'][img_id]))
        np.testing.assert_array_equal(got, gt)


def test_missing_pseudo_mask_names_file(tmp_path):
    _scope()
    from mmseg.registry import DATASETS
    data = make_tiny_voc(str(tmp_path / 'voc'), num_train=3, num_val=1)
    _write_pseudo(data)
    gone = data['splits']['train_aug'][1]
    os.remove(osp.join(data['root'], 'pseudo_labels', 'excel', gone + '.png'))
    cfg = Config.fromfile(VOC_EXCEL)
    train = copy.deepcopy(cfg.train_dataloader.dataset)
    train.data_root = data['root']
    with pytest.raises(FileNotFoundError, match=re.escape(gone + '.png')):
        DATASETS.build(train)
    # no pseudo folder configured at all: the transform says so
    train.pseudo_seg_map_dir = None
    ds = DATASETS.build(train)
    with pytest.raises(KeyError, match='pseudo_seg_map_dir'):
        ds[0]


TINY_DEEPLAB = """
_base_ = [{base!r}]
model = dict(
    pretrained=None,
    backbone=dict(depth=18, norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(in_channels=512, c1_in_channels=64, channels=16,
                     c1_channels=8, norm_cfg=dict(type='BN', requires_grad=True)),
    auxiliary_head=dict(in_channels=256, channels=8,
                        norm_cfg=dict(type='BN', requires_grad=True)))
"""

TINY_SEGFORMER = """
_base_ = [{base!r}]
model = dict(
    backbone=dict(init_cfg=None, embed_dims=8, num_heads=[1, 1, 1, 1],
                  num_layers=[1, 1, 1, 1]),
    decode_head=dict(in_channels=[8, 8, 8, 8], channels=16,
                     norm_cfg=dict(type='BN', requires_grad=True)))
"""

TINY_COMMON = """
crop_size = (64, 64)
img_scale = (80, 64)
data_preprocessor = dict(size=crop_size)
model.update(data_preprocessor=data_preprocessor)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPseudoSegMap', as_gt=True),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=3, val_interval=3)
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=3))
"""


@pytest.mark.slow
@pytest.mark.parametrize('base', [VOC_EXCEL, SEGFORMER_EXCEL],
                         ids=['deeplabv3plus', 'segformer'])
def test_train_tiny_baseline_on_pseudo_masks(tmp_path, base):
    data = make_tiny_voc(str(tmp_path / 'voc'), num_train=4, num_val=2)
    _write_pseudo(data)
    body = TINY_DEEPLAB if 'deeplab' in base else TINY_SEGFORMER
    cfg_path = tmp_path / 'tiny_baseline.py'
    cfg_path.write_text(body.format(base=base) + TINY_COMMON)
    work = tmp_path / 'work'
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    args = [
        sys.executable, str(ROOT / 'tools' / 'train.py'), str(cfg_path),
        '--work-dir', str(work), '--cfg-options',
        f'train_dataloader.dataset.data_root={data["root"]}',
        f'val_dataloader.dataset.data_root={data["root"]}',
        f'test_dataloader.dataset.data_root={data["root"]}'
    ]
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    losses = [float(v) for v in re.findall(r'\bloss: ([-+0-9.eEnaif]+)', out)]
    assert len(losses) == 3, out[-3000:]
    assert all(np.isfinite(losses)) and all(v > 0 for v in losses)
    assert (work / 'iter_3.pth').is_file()
    # validation ran on the ground truth with mmseg's IoUMetric
    assert 'mIoU' in out and 'aeroplane' in out


def test_metafile_and_readme_list_every_config():
    import yaml
    folder = ROOT / 'configs' / 'baselines'
    meta = yaml.safe_load((folder / 'metafile.yaml').read_text())
    listed = {m['Config'] for m in meta['Models']}
    assert listed == {osp.relpath(p, ROOT) for p in BASELINES}
    # no invented numbers: every mIoU is empty until measured
    assert all(m['Results']['Metrics']['mIoU'] is None
               for m in meta['Models'])
    readme = (folder / 'README.md').read_text()
    for p in BASELINES:
        assert f'({osp.basename(p)})' in readme, p

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""VOC/COCO WSSS datasets on tiny generated datasets (EXCEL.md §8.1)."""
import copy
import os
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from mmseg_excel.testing.tiny_datasets import (make_tiny_coco, make_tiny_voc,
                                               write_mask)

from mmengine.registry import init_default_scope  # noqa: E402

from mmseg.registry import DATASETS  # noqa: E402

import mmseg_excel  # noqa: E402,F401

CROP = (32, 32)


def train_pipeline(crop=CROP, keep_until_crop=False):
    """The training pipeline of the _base_ configs at a small crop."""
    return [
        dict(type='LoadImageFromFile', imdecode_backend='pillow'),
        dict(type='LoadImageLevelLabels', keep_mask=keep_until_crop),
        dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
        dict(type='RandomFlip', prob=0.5),
        dict(
            type='RandomCrop',
            crop_size=crop,
            cat_max_ratio=0.75 if keep_until_crop else 1.0),
        *([dict(type='DropGTSegMap')] if keep_until_crop else []),
        dict(type='RandomOffsetPad', size=crop),
        dict(type='PackWSSSInputs'),
    ]


def val_pipeline_cfg():
    return [
        dict(type='LoadImageFromFile', imdecode_backend='pillow'),
        dict(type='Resize', scale=(40, 40), keep_ratio=False),
        dict(type='LoadImageLevelLabels', keep_mask=True),
        dict(type='PackWSSSInputs'),
    ]


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


@pytest.fixture
def tiny_voc(tmp_path):
    return make_tiny_voc(str(tmp_path / 'voc'), num_train=6, num_val=4)


@pytest.fixture
def tiny_coco(tmp_path):
    return make_tiny_coco(str(tmp_path / 'coco'), num_train=5, num_val=3)


def voc_cfg(info, split='train_aug', pipeline=None, **kw):
    return dict(
        type='VOCWSSSDataset',
        data_root=info['root'],
        ann_file=f'ImageSets/Segmentation/{split}.txt',
        pipeline=pipeline if pipeline is not None else train_pipeline(),
        **kw)


def coco_cfg(info, split='train', pipeline=None, **kw):
    return dict(
        type='COCOWSSSDataset',
        data_root=info['root'],
        ann_file=f'ImageSets/{split}.txt',
        pipeline=pipeline if pipeline is not None else train_pipeline(),
        **kw)


def expected_multi_hot(ids, num_classes):
    vec = torch.zeros(num_classes - 1)
    for i in ids:
        vec[i - 1] = 1
    return vec


def check_train_samples(dataset, info, split, num_classes):
    assert len(dataset) == len(info['splits'][split])
    for idx in range(len(dataset)):
        out = dataset[idx]
        sample = out['data_samples']
        img_id = sample.metainfo['img_id']
        assert torch.equal(
            sample.gt_cls_label,
            expected_multi_hot(info['labels'][img_id], num_classes))
        # no pixel labels in a training sample
        assert 'gt_sem_seg' not in sample
        assert 'pseudo_sem_seg' not in sample
        assert out['inputs'].shape[0] == 3
        assert out['inputs'].shape[1] >= CROP[0]
        assert out['inputs'].shape[2] >= CROP[1]


def test_voc_train_labels_from_masks(tiny_voc):
    ds = DATASETS.build(voc_cfg(tiny_voc))
    assert ds.metainfo['classes'][0] == 'background'
    assert len(ds.metainfo['classes']) == 21
    assert len(ds.metainfo['palette']) == 21
    check_train_samples(ds, tiny_voc, 'train_aug', 21)
    # the background+ignore-only image has an all-zero label
    idx = [d['img_id']
           for d in ds.load_data_list()].index(tiny_voc['bg_only_id'])
    assert ds[idx]['data_samples'].gt_cls_label.sum() == 0
    assert tiny_voc['labels'][tiny_voc['bg_only_id']] == []


def test_coco_train_labels_from_masks(tiny_coco):
    ds = DATASETS.build(coco_cfg(tiny_coco))
    assert len(ds.metainfo['classes']) == 81
    assert ds.metainfo['classes'][4] == 'motorbike'
    check_train_samples(ds, tiny_coco, 'train', 81)
    # the grey-scale JPEG is loaded with three channels
    idx = [d['img_id']
           for d in ds.load_data_list()].index(tiny_coco['gray_id'])
    img = ds[idx]['inputs']
    assert img.shape[0] == 3
    assert torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    assert img.float().std() > 0


def test_val_samples_keep_gt_at_original_size(tiny_voc):
    ds = DATASETS.build(
        voc_cfg(tiny_voc, split='val', pipeline=val_pipeline_cfg()))
    for idx in range(len(ds)):
        out = ds[idx]
        sample = out['data_samples']
        img_id = sample.metainfo['img_id']
        gt = np.array(Image.open(tiny_voc['mask_paths'][img_id]))
        assert out['inputs'].shape[1:] == (40, 40)
        assert torch.equal(sample.gt_sem_seg.data[0],
                           torch.from_numpy(gt.astype(np.int64)))
        assert torch.equal(sample.gt_cls_label,
                           expected_multi_hot(tiny_voc['labels'][img_id], 21))


def test_labels_file_is_used_without_reading_masks(tiny_voc, tmp_path):
    from mmseg_excel.datasets import write_labels_file
    labels = {k: [20] for k in tiny_voc['splits']['train_aug']}
    path = str(tmp_path / 'labels.json')
    write_labels_file(path, labels)
    # masks gone: a labels-file pipeline must not need them
    for img_id in tiny_voc['splits']['train_aug']:
        os.remove(tiny_voc['mask_paths'][img_id])
    ds = DATASETS.build(voc_cfg(tiny_voc, cls_labels_file=path))
    for idx in range(len(ds)):
        sample = ds[idx]['data_samples']
        assert torch.equal(sample.gt_cls_label, expected_multi_hot([20], 21))
        assert 'gt_sem_seg' not in sample


def test_labels_file_missing_entry(tiny_voc, tmp_path):
    from mmseg_excel.datasets import write_labels_file
    ids = tiny_voc['splits']['train_aug']
    path = str(tmp_path / 'labels.json')
    write_labels_file(path, {k: [1] for k in ids[1:]})
    with pytest.raises(KeyError, match=ids[0]):
        DATASETS.build(voc_cfg(tiny_voc, cls_labels_file=path))


def test_missing_root(tmp_path):
    root = str(tmp_path / 'no_such_root')
    with pytest.raises(FileNotFoundError, match='no_such_root'):
        DATASETS.build(voc_cfg(dict(root=root)))
    with pytest.raises(FileNotFoundError, match='no_such_root'):
        DATASETS.build(coco_cfg(dict(root=root)))


def test_missing_split_file(tiny_voc):
    with pytest.raises(FileNotFoundError, match='nosplit.txt'):
        DATASETS.build(voc_cfg(tiny_voc, split='nosplit'))


def test_missing_image_named_in_split(tiny_voc, tiny_coco):
    img_id = tiny_voc['splits']['train_aug'][2]
    os.remove(tiny_voc['img_paths'][img_id])
    with pytest.raises(FileNotFoundError, match=img_id + r'\.jpg'):
        DATASETS.build(voc_cfg(tiny_voc))
    img_id = tiny_coco['splits']['val'][1]
    os.remove(tiny_coco['img_paths'][img_id])
    with pytest.raises(FileNotFoundError, match=img_id + r'\.jpg'):
        DATASETS.build(coco_cfg(tiny_coco, split='val'))


def test_bad_coco_name_in_split(tiny_coco):
    with open(tiny_coco['split_files']['train'], 'a') as f:
        f.write('COCO_test2015_000000000001\n')
    with pytest.raises(ValueError, match='COCO_test2015_000000000001'):
        DATASETS.build(coco_cfg(tiny_coco))


@pytest.mark.parametrize('bad_value', [21, 100])
def test_out_of_range_class_id(tiny_voc, bad_value):
    img_id = tiny_voc['splits']['train_aug'][3]
    path = tiny_voc['mask_paths'][img_id]
    mask = np.array(Image.open(path))
    mask[0, 0] = bad_value
    write_mask(path, mask, 'L')
    ds = DATASETS.build(voc_cfg(tiny_voc))
    with pytest.raises(ValueError, match=rf'{img_id}\.png.*\[{bad_value}\]'):
        ds[3]


def test_out_of_range_class_id_coco(tiny_coco):
    img_id = tiny_coco['splits']['train'][2]
    path = tiny_coco['mask_paths'][img_id]
    mask = np.array(Image.open(path))
    mask[-1, -1] = 81
    write_mask(path, mask, 'L')
    ds = DATASETS.build(coco_cfg(tiny_coco))
    with pytest.raises(ValueError, match=rf'{img_id[-12:]}\.png.*\[81\]'):
        ds[2]


def test_missing_mask_names_file(tiny_voc):
    img_id = tiny_voc['splits']['train_aug'][1]
    os.remove(tiny_voc['mask_paths'][img_id])
    ds = DATASETS.build(voc_cfg(tiny_voc))
    with pytest.raises(FileNotFoundError, match=img_id + r'\.png'):
        ds[1]


def test_gt_crop_switch_drops_mask_after_crop(tiny_voc):
    ds = DATASETS.build(
        voc_cfg(tiny_voc, pipeline=train_pipeline(keep_until_crop=True)))
    check_train_samples(ds, tiny_voc, 'train_aug', 21)


def test_pseudo_masks_for_training(tiny_voc, tmp_path):
    pseudo_dir = tmp_path / 'pseudo'
    ids = tiny_voc['splits']['train_aug']
    expected = {}
    for k, img_id in enumerate(ids):
        gt = np.array(Image.open(tiny_voc['mask_paths'][img_id]))
        pm = np.full_like(gt, k + 1)  # constant pseudo mask: easy to check
        pm[:, :3] = 255
        write_mask(str(pseudo_dir / f'{img_id}.png'), pm, 'L')
        expected[img_id] = k + 1
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadImageLevelLabels'),
        dict(type='LoadPseudoSegMap'),
        dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomCrop', crop_size=CROP),
        dict(type='RandomOffsetPad', size=CROP),
        dict(type='PackWSSSInputs'),
    ]
    ds = DATASETS.build(
        voc_cfg(
            tiny_voc, pipeline=pipeline, pseudo_seg_map_dir=str(pseudo_dir)))
    for idx in range(len(ds)):
        out = ds[idx]
        sample = out['data_samples']
        img_id = sample.metainfo['img_id']
        assert 'gt_sem_seg' not in sample
        pseudo = sample.pseudo_sem_seg.data
        assert pseudo.shape[1:] == out['inputs'].shape[1:]
        values = set(pseudo.unique().tolist())
        assert expected[img_id] in values
        assert values <= {expected[img_id], 255}
    # missing pseudo mask: named at load time
    os.remove(pseudo_dir / f'{ids[2]}.png')
    with pytest.raises(FileNotFoundError, match=ids[2] + r'\.png'):
        DATASETS.build(
            voc_cfg(
                tiny_voc,
                pipeline=pipeline,
                pseudo_seg_map_dir=str(pseudo_dir)))


def test_pseudo_mask_as_gt_for_plain_mmseg_models(tiny_voc, tmp_path):
    pseudo_dir = tmp_path / 'pseudo'
    for img_id in tiny_voc['splits']['train_aug']:
        shape = np.array(Image.open(tiny_voc['mask_paths'][img_id])).shape
        write_mask(str(pseudo_dir / f'{img_id}.png'), np.full(shape, 7), 'L')
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadPseudoSegMap', as_gt=True),
        dict(type='PackSegInputs'),
    ]
    ds = DATASETS.build(
        voc_cfg(
            tiny_voc, pipeline=pipeline, pseudo_seg_map_dir=str(pseudo_dir)))
    sample = ds[0]['data_samples']
    assert set(sample.gt_sem_seg.data.unique().tolist()) == {7}


def test_custom_class_subset(tiny_voc):
    """A metainfo class subset maps the mask ids (mmseg label_map)."""
    classes = ('background', 'cat', 'dog', 'tvmonitor')
    ds = DATASETS.build(voc_cfg(tiny_voc, metainfo=dict(classes=classes)))
    voc = DATASETS.get('VOCWSSSDataset').METAINFO['classes']
    keep = {voc.index(c): i for i, c in enumerate(classes)}
    for idx in range(len(ds)):
        sample = ds[idx]['data_samples']
        ids = tiny_voc['labels'][sample.metainfo['img_id']]
        new_ids = sorted(keep[i] for i in ids if i in keep)
        assert torch.equal(sample.gt_cls_label,
                           expected_multi_hot(new_ids, len(classes)))


def test_dataloader_from_base_configs(tiny_voc, tiny_coco):
    from mmengine.config import Config
    from mmengine.runner import Runner
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    for name, info, classes in [('voc12aug_wsss-320x320.py', tiny_voc, 21),
                                ('coco14_wsss-320x320.py', tiny_coco, 81)]:
        cfg = Config.fromfile(
            osp.join(repo, 'configs', '_base_', 'datasets', name))
        # the crop of the built pipeline is the config's 320x320
        crop = [t for t in cfg.train_pipeline if t['type'] == 'RandomCrop'][0]
        assert tuple(crop['crop_size']) == (320, 320)
        for key in ['train_dataloader', 'val_dataloader', 'test_dataloader']:
            dl_cfg = copy.deepcopy(cfg[key])
            dl_cfg['dataset']['data_root'] = info['root']
            dl_cfg.update(num_workers=0, persistent_workers=False)
            if key == 'train_dataloader':
                dl_cfg['batch_size'] = 2
            loader = Runner.build_dataloader(dl_cfg, seed=0)
            batch = next(iter(loader))
            samples = batch['data_samples']
            for img, sample in zip(batch['inputs'], samples):
                img_id = sample.metainfo['img_id']
                assert torch.equal(
                    sample.gt_cls_label,
                    expected_multi_hot(info['labels'][img_id], classes))
                if key == 'train_dataloader':
                    assert img.shape == (3, 320, 320)
                    assert 'gt_sem_seg' not in sample
                else:
                    # test images keep their original size: the model's
                    # WSSSDataPreProcessor resizes the normalised tensor
                    assert tuple(img.shape[1:]) == tuple(
                        sample.metainfo['ori_shape'][:2])
                    assert 'pseudo_label' in key or 'gt_sem_seg' in sample
        gt_crop = cfg.get('train_pipeline_gt_crop')
        if gt_crop is not None:
            types = [t['type'] for t in gt_crop]
            assert types.index('DropGTSegMap') == types.index('RandomCrop') + 1
            assert gt_crop[types.index('RandomCrop')]['cat_max_ratio'] < 1


def test_voc_layout_dataset_with_own_classes(tmp_path):
    info = make_tiny_voc(str(tmp_path / 'toy'), num_classes=5, seed=3)
    classes = ('background', 'a', 'b', 'c', 'd')
    ds = DATASETS.build(
        dict(
            voc_cfg(info),
            type='VOCLayoutWSSSDataset',
            metainfo=dict(classes=classes)))
    assert len(ds.metainfo['palette']) == 5
    check_train_samples(ds, info, 'train_aug', 5)
    with pytest.raises(ValueError, match='metainfo'):
        DATASETS.build(dict(voc_cfg(info), type='VOCLayoutWSSSDataset'))
    # a mask id beyond the declared classes is an error naming the mask
    img_id = info['splits']['train_aug'][1]
    mask = np.array(Image.open(info['mask_paths'][img_id]))
    mask[0, 0] = 5
    write_mask(info['mask_paths'][img_id], mask)
    with pytest.raises(ValueError, match=rf'{img_id}\.png.*\[5\]'):
        ds[1]

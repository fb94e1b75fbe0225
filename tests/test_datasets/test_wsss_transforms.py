# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Augmentation and packing transforms of the WSSS pipelines (§8.1)."""
import numpy as np
import pytest
import torch
from PIL import Image

from mmseg.registry import TRANSFORMS

import mmseg_excel  # noqa: F401
from mmseg_excel.testing.tiny_datasets import write_mask


def build(cfg):
    return TRANSFORMS.build(cfg)


def sample(h=37, w=53, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    mask = rng.integers(0, 5, size=(h, w)).astype(np.uint8)
    mask[:3] = 255
    return dict(
        img=img,
        img_shape=(h, w),
        ori_shape=(h, w),
        gt_seg_map=mask,
        seg_fields=['gt_seg_map'])


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_random_rescale_matches_official_pil_resize(seed):
    t = build(dict(type='RandomRescale', ratio_range=(0.5, 2.0)))
    res = sample()
    img, mask = res['img'].copy(), res['gt_seg_map'].copy()
    np.random.seed(seed)
    out = t(res)
    np.random.seed(seed)
    f = np.random.uniform(0.5, 2.0)
    new_w, new_h = int(53 * f), int(37 * f)
    assert out['img'].shape == (new_h, new_w, 3)
    # official: PIL bilinear (antialiased) on the RGB image, nearest on mask
    ref = np.asarray(
        Image.fromarray(img[..., ::-1]).resize((new_w, new_h),
                                               Image.BILINEAR))[..., ::-1]
    np.testing.assert_array_equal(out['img'], ref)
    ref_mask = np.asarray(
        Image.fromarray(mask).resize((new_w, new_h), Image.NEAREST))
    np.testing.assert_array_equal(out['gt_seg_map'], ref_mask)
    assert out['img_shape'] == (new_h, new_w)


def test_random_rescale_range_and_bad_args():
    t = build(dict(type='RandomRescale', ratio_range=(0.5, 2.0)))
    np.random.seed(0)
    ratios = [
        t(dict(img=np.zeros((100, 100, 3), np.uint8)))['img'].shape[0] / 100
        for _ in range(200)
    ]
    assert 0.5 <= min(ratios) < 0.6 and 1.9 < max(ratios) < 2.0
    with pytest.raises(ValueError, match='ratio_range'):
        build(dict(type='RandomRescale', ratio_range=(2.0, 0.5)))


def test_random_offset_pad_places_image_and_pads_values():
    t = build(dict(type='RandomOffsetPad', size=(48, 40)))
    offsets = set()
    np.random.seed(0)
    for _ in range(300):
        res = sample(h=37, w=53)
        img, mask = res['img'].copy(), res['gt_seg_map'].copy()
        out = t(res)
        assert out['img'].shape == (48, 53, 3)  # w already >= 40
        top, left = out['pad_offset']
        assert left == 0 and 0 <= top <= 11
        assert out['img_box'] == (top, top + 37, 0, 53)
        offsets.add(top)
        np.testing.assert_array_equal(out['img'][top:top + 37], img)
        np.testing.assert_array_equal(out['gt_seg_map'][top:top + 37], mask)
        pad_rows = np.r_[0:top, top + 37:48]
        assert (out['img'][pad_rows] == 0).all()
        assert (out['gt_seg_map'][pad_rows] == 255).all()
    assert offsets == set(range(12))  # every offset is drawn
    # nothing to pad: unchanged
    res = sample(h=50, w=60)
    img = res['img'].copy()
    out = t(res)
    np.testing.assert_array_equal(out['img'], img)


def test_crop_then_pad_gives_crop_size():
    crop = build(dict(type='RandomCrop', crop_size=(32, 32)))
    pad = build(dict(type='RandomOffsetPad', size=(32, 32)))
    for h, w in [(20, 50), (50, 20), (10, 10), (64, 64)]:
        out = pad(crop(sample(h=h, w=w)))
        assert out['img'].shape == (32, 32, 3)
        assert out['gt_seg_map'].shape == (32, 32)


def test_load_image_level_labels_keep_and_drop(tmp_path):
    mask = np.zeros((6, 7), np.uint8)
    mask[1, 1], mask[2, 2], mask[3, 3] = 4, 9, 255
    path = str(tmp_path / 'm.png')
    write_mask(path, mask, 'P')
    base = dict(seg_map_path=path, num_classes=10, seg_fields=[])
    out = build(dict(type='LoadImageLevelLabels'))(dict(base))
    assert np.flatnonzero(out['gt_cls_label']).tolist() == [3, 8]
    assert out['gt_cls_label'].shape == (9, )
    assert 'gt_seg_map' not in out and out['seg_fields'] == []
    out = build(dict(type='LoadImageLevelLabels', keep_mask=True))(
        dict(base, seg_fields=[]))
    np.testing.assert_array_equal(out['gt_seg_map'], mask)
    assert out['seg_fields'] == ['gt_seg_map']
    # an already loaded mask is used and dropped in training mode
    res = dict(num_classes=10, gt_seg_map=mask, seg_fields=['gt_seg_map'])
    out = build(dict(type='LoadImageLevelLabels'))(res)
    assert np.flatnonzero(out['gt_cls_label']).tolist() == [3, 8]
    assert 'gt_seg_map' not in out and out['seg_fields'] == []
    # num_classes is required
    with pytest.raises(KeyError, match='num_classes'):
        build(dict(type='LoadImageLevelLabels'))(dict(seg_map_path=path))
    # a colour mask is refused, naming the file
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / 'rgb.png')
    with pytest.raises(ValueError, match='rgb.png.*single-channel'):
        build(dict(type='LoadImageLevelLabels'))(
            dict(base, seg_map_path=str(tmp_path / 'rgb.png')))


def test_drop_gt_seg_map():
    res = sample()
    out = build(dict(type='DropGTSegMap'))(res)
    assert 'gt_seg_map' not in out and out['seg_fields'] == []


def test_pack_wsss_inputs():
    pack = build(dict(type='PackWSSSInputs'))
    res = sample()
    label = np.zeros(20, np.float32)
    label[[2, 7]] = 1
    res.update(gt_cls_label=label, img_id='x', img_path='x.jpg')
    res['pseudo_seg_map'] = np.full((37, 53), 3, np.uint8)
    out = pack(res)
    ds = out['data_samples']
    assert torch.equal(ds.gt_cls_label, torch.from_numpy(label))
    assert ds.gt_sem_seg.data.shape == (1, 37, 53)
    assert torch.equal(ds.pseudo_sem_seg.data,
                       torch.full((1, 37, 53), 3, dtype=torch.int64))
    assert ds.metainfo['img_id'] == 'x'
    assert out['inputs'].shape == (3, 37, 53)
    with pytest.raises(KeyError, match='LoadImageLevelLabels'):
        pack(dict(img=np.zeros((4, 4, 3), np.uint8), img_path='y.jpg'))

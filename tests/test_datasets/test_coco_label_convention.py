# Copyright (c) mmseg-excel contributors. All rights reserved.
"""COCO's two mask label conventions (contiguous 0..80 vs category ids
0..90): detection, and refusal of masks that do not match the class list."""
import numpy as np
import pytest
from PIL import Image

from mmseg_excel.testing.tiny_datasets import make_tiny_coco, write_mask

from mmengine.registry import init_default_scope  # noqa: E402

from mmseg.registry import DATASETS  # noqa: E402

import mmseg_excel  # noqa: E402,F401
from mmseg_excel.datasets import (COCO_ID_CLASSES,  # noqa: E402
                                  COCO_WSSS_CLASSES, mask_label_convention)


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


def test_coco_id_class_list():
    assert len(COCO_ID_CLASSES) == 91
    # category ids: 11 fire hydrant, 12 unused, 13 stop sign, 90 toothbrush
    assert COCO_ID_CLASSES[11] == 'fire hydrant' == COCO_WSSS_CLASSES[11]
    assert COCO_ID_CLASSES[12] == 'street sign'
    assert COCO_ID_CLASSES[13] == 'stop sign' == COCO_WSSS_CLASSES[12]
    assert COCO_ID_CLASSES[88] == 'teddy bear' == COCO_WSSS_CLASSES[78]
    assert COCO_ID_CLASSES[90] == 'toothbrush' == COCO_WSSS_CLASSES[80]
    assert set(COCO_WSSS_CLASSES) < set(COCO_ID_CLASSES)


@pytest.mark.parametrize('ids,expected', [
    ({0, 1, 12}, 'contiguous'),  # 12: stop sign / unused id
    ({0, 71, 255}, 'contiguous'),
    ({0, 88}, 'coco_id'),  # 88: teddy bear / beyond 80
    ({0, 1, 81, 255}, 'coco_id'),
    ({0, 1, 11, 255}, None),  # fits both
    ({255}, None),
])
def test_mask_label_convention(ids, expected):
    assert mask_label_convention(ids) == expected


@pytest.mark.parametrize('ids,match', [({12, 88}, 'mixed'),
                                       ({0, 83}, r'\[83\]'),
                                       ({0, 120}, r'\[120\]')])
def test_mask_label_convention_refuses(ids, match):
    with pytest.raises(ValueError, match=match):
        mask_label_convention(ids)


def _pseudo(info, tmp_path, values):
    """One pseudo mask per training image, image k filled with
    ``values[k % len(values)]`` (plus background and ignored pixels)."""
    out = tmp_path / 'pseudo'
    for k, img_id in enumerate(info['splits']['train']):
        shape = np.asarray(Image.open(info['mask_paths'][img_id])).shape
        m = np.zeros(shape, np.uint8)
        m[: shape[0] // 2] = values[k % len(values)]
        m[:, :2] = 255
        write_mask(str(out / f'{img_id}.png'), m, 'L')
    return out


def _cfg(info, pseudo, dataset='COCOWSSSDataset', **kw):
    return dict(type=dataset, data_root=info['root'],
                ann_file='ImageSets/train.txt', label_source='mask',
                pseudo_seg_map_dir=str(pseudo), pipeline=[], **kw)


def test_dataset_checks_the_pseudo_mask_convention(tmp_path):
    info = make_tiny_coco(str(tmp_path / 'coco'), num_train=4, num_val=1)
    ids = info['splits']['train']
    # contiguous masks (stop sign = 12) load with the 81-class list
    pseudo = _pseudo(info, tmp_path, [1, 12])
    assert len(DATASETS.build(_cfg(info, pseudo))) == 4
    # ... and are refused by the 91-entry category-id list
    with pytest.raises(ValueError) as e:
        DATASETS.build(_cfg(info, pseudo, 'COCOIdWSSSDataset'))
    msg = str(e.value)
    assert 'contiguous' in msg and f'{ids[1]}.png' in msg and '[12]' in msg
    assert 'COCOWSSSDataset' in msg
    # category-id masks (teddy bear = 88): refused by the 81-class list
    pseudo = _pseudo(info, tmp_path, [1, 1, 88])
    with pytest.raises(ValueError) as e:
        DATASETS.build(_cfg(info, pseudo))
    msg = str(e.value)
    assert 'coco_id' in msg and f'{ids[2]}.png' in msg and '[88]' in msg
    assert 'COCOIdWSSSDataset' in msg and str(pseudo) in msg
    assert len(DATASETS.build(_cfg(info, pseudo, 'COCOIdWSSSDataset'))) == 4
    # the check can be switched off (the id range check stays in
    # LoadPseudoSegMap)
    DATASETS.build(_cfg(info, pseudo, convention_check_masks=0))
    # masks that fit both conventions: nothing to refuse
    pseudo = _pseudo(info, tmp_path, [1, 2, 3, 4])
    DATASETS.build(_cfg(info, pseudo))
    DATASETS.build(_cfg(info, pseudo, 'COCOIdWSSSDataset'))
    # an id valid in neither convention names its mask
    pseudo = _pseudo(info, tmp_path, [1, 83])
    with pytest.raises(ValueError, match=f'{ids[1]}.png.*83'):
        DATASETS.build(_cfg(info, pseudo))


def test_only_sampled_masks_are_read(tmp_path):
    """``convention_check_masks`` bounds the masks read at build time."""
    info = make_tiny_coco(str(tmp_path / 'coco'), num_train=4, num_val=1)
    pseudo = _pseudo(info, tmp_path, [1, 1, 1, 88])
    DATASETS.build(_cfg(info, pseudo, convention_check_masks=2))  # 0 and 2
    with pytest.raises(ValueError, match='coco_id'):
        DATASETS.build(_cfg(info, pseudo, convention_check_masks=4))

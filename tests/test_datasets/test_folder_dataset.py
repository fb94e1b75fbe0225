# Copyright (c) mmseg-excel contributors. All rights reserved.
"""WSSSFolderDataset and its labels tables (docs/custom_dataset.md): the Toy
World written by ``make_dataset.py --layout folder``, CSV / JSON labels by
class name, masks only where they exist, clear errors."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import mmseg_excel  # noqa: F401
from mmseg_excel.datasets import WSSSFolderDataset, read_named_labels
from mmseg_excel.datasets.transforms import LoadImageLevelLabels

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))
CLASSES = ('background', 'apple', 'star', 'ring', 'cross', 'heart', 'moon',
           'kite', 'fish')


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    import make_dataset
    root = tmp_path_factory.mktemp('folder_world')
    make_dataset.main([
        '--out', str(root), '--layout', 'folder', '--seed', '2',
        '--num-train', '6', '--num-val', '2', '--num-test', '0', '--size',
        '32'
    ])
    return root


def test_render_shows_progress(tmp_path, capsys):
    import make_dataset
    make_dataset.main(['--out', str(tmp_path), '--num-train', '2',
                       '--num-val', '1', '--num-test', '1', '--size', '32'])
    out = capsys.readouterr().out
    assert 'ETA' in out and '4/4' in out, out


def test_layout_written(folder):
    assert sorted(p.name for p in folder.iterdir()) == [
        'captions.json', 'classes.txt', 'images', 'labels_test.csv',
        'labels_train.csv', 'labels_val.csv', 'masks', 'meta.json'
    ]
    assert (folder / 'classes.txt').read_text().split() == list(CLASSES)
    assert len(list((folder / 'images').glob('train_*.png'))) == 6


def test_dataset_labels_match_masks(folder):
    ds = WSSSFolderDataset(
        metainfo=dict(classes=CLASSES),
        data_root=str(folder),
        labels_file='labels_train.csv',
        data_prefix=dict(img_path='images', seg_map_path='masks'),
        pipeline=[])
    assert len(ds) == 6 and ds.label_source_used == 'file'
    from PIL import Image
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert info['img_path'].endswith(info['img_id'] + '.png')
        mask = np.asarray(Image.open(info['seg_map_path']))
        present = sorted(set(np.unique(mask).tolist()) - {0, 255})
        assert info['cls_label_ids'] == present, info['img_id']
    # a split file restricts the images; ids may carry the suffix
    (folder / 'two.txt').write_text('train_000001.png\ntrain_000000\n')
    ds2 = WSSSFolderDataset(
        metainfo=dict(classes=CLASSES), data_root=str(folder),
        labels_file='labels_train.csv', ann_file='two.txt',
        data_prefix=dict(img_path='images'), pipeline=[])
    assert [d['img_id'] for d in ds2] == ['train_000001', 'train_000000']
    # label_source='mask': labels from the masks, no table needed
    ds3 = WSSSFolderDataset(
        metainfo=dict(classes=CLASSES), data_root=str(folder),
        ann_file='two.txt', label_source='mask',
        data_prefix=dict(img_path='images', seg_map_path='masks'),
        pipeline=[])
    assert ds3.label_source_used == 'mask'
    assert ds3.get_data_info(0)['img_path'].endswith('train_000001.png')


def test_keep_mask_auto(folder, tmp_path):
    t = LoadImageLevelLabels(keep_mask='auto')
    mask = str(folder / 'masks' / 'train_000000.png')
    r = t(dict(seg_map_path=mask, num_classes=9, cls_label_ids=[1]))
    assert r['gt_seg_map'].shape == (32, 32)
    r = t(dict(seg_map_path=str(tmp_path / 'none.png'), num_classes=9,
               cls_label_ids=[1]))
    assert 'gt_seg_map' not in r and r['cls_label_ids'] == [1]
    with pytest.raises(ValueError, match='keep_mask'):
        LoadImageLevelLabels(keep_mask='yes')


def test_labels_tables(tmp_path):
    csv = tmp_path / 'l.csv'
    csv.write_text('image,labels\na.jpg,apple;fish\nb.jpg,\n'
                   '"c.jpg", star ; apple \n')
    assert read_named_labels(str(csv), CLASSES) == {
        'a.jpg': [1, 8], 'b.jpg': [], 'c.jpg': [1, 2]}
    js = tmp_path / 'l.json'
    js.write_text(json.dumps({'a.png': ['moon', 7], 'b.png': []}))
    assert read_named_labels(str(js), CLASSES) == {
        'a.png': [6, 7], 'b.png': []}
    bad = tmp_path / 'bad.csv'
    bad.write_text('image,labels\na.jpg,apple;dog\n')
    with pytest.raises(ValueError, match="line 2: unknown class 'dog'"):
        read_named_labels(str(bad), CLASSES)
    bad.write_text('file,classes\na.jpg,apple\n')
    with pytest.raises(ValueError, match='header'):
        read_named_labels(str(bad), CLASSES)
    bad.write_text('image,labels\na.jpg,apple\na.jpg,star\n')
    with pytest.raises(ValueError, match='listed twice'):
        read_named_labels(str(bad), CLASSES)
    bad.write_text('image,labels\na.jpg,background\n')
    with pytest.raises(ValueError, match='not a foreground class'):
        read_named_labels(str(bad), CLASSES)
    xml = tmp_path / 'l.xml'
    xml.write_text('x')
    with pytest.raises(ValueError, match='.csv or .json'):
        read_named_labels(str(xml), CLASSES)
    with pytest.raises(FileNotFoundError):
        read_named_labels(str(tmp_path / 'missing.csv'), CLASSES)


def test_dataset_errors(folder, tmp_path):
    with pytest.raises(ValueError, match='metainfo'):
        WSSSFolderDataset(data_root=str(folder), labels_file='x.csv')
    (tmp_path / 'images').mkdir()
    (tmp_path / 'labels.csv').write_text('image,labels\nmissing.png,apple\n')
    with pytest.raises(FileNotFoundError, match='missing.png'):
        WSSSFolderDataset(
            metainfo=dict(classes=CLASSES), data_root=str(tmp_path),
            labels_file='labels.csv', pipeline=[])
    (tmp_path / 'split.txt').write_text('other\n')
    with pytest.raises(KeyError, match='no row for 1 image'):
        WSSSFolderDataset(
            metainfo=dict(classes=CLASSES), data_root=str(tmp_path),
            labels_file='labels.csv', ann_file='split.txt', pipeline=[])

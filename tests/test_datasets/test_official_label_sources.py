# Copyright (c) mmseg-excel contributors. All rights reserved.
"""The official image-level label sources, on their real file layouts.

* VOC: ``Annotations/<id>.xml`` object names (difficult objects included)
  are the default source where the folder exists; a class present only in
  the XML (void in the mask) keeps its label;
* COCO: the CLIP-ES label list (``<name>.jpg <0-based ids>``), given as
  ``label_list_file`` or as the split file itself;
* the official ``cls_labels_onehot.npy`` (pickled dict name -> float32
  one-hot over the foreground classes) is written and read;
* the converters choose the source (``--source``), write ``.npy`` and
  report how many images' labels differ between the two sources.
"""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmseg_excel.datasets import (COCO_WSSS_CLASSES, VOC_CLASSES,
                                  read_coco_label_list, read_labels_file,
                                  read_onehot_npy, read_voc_xml_labels,
                                  write_onehot_npy)
from mmseg_excel.testing.tiny_datasets import (make_tiny_coco, make_tiny_voc,
                                               write_coco_label_list,
                                               write_voc_annotation)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools', 'dataset_converters')
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadImageLevelLabels'),
    dict(type='PackWSSSInputs')
]


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401


def _build(**cfg):
    from mmseg.registry import DATASETS
    return DATASETS.build(dict(pipeline=PIPELINE, **cfg))


def _ids_of(ds):
    """image id -> foreground class ids of gt_cls_label, over the dataset."""
    out = {}
    for idx in range(len(ds)):
        s = ds[idx]['data_samples']
        out[s.metainfo['img_id']] = [
            int(i) + 1 for i in np.flatnonzero(s.gt_cls_label.numpy())
        ]
    return out


def _voc_with_xml(tmp_path, extra_name='bottle'):
    """Tiny VOC whose XMLs list the mask classes (repeated, one difficult),
    plus for one image a difficult object absent from its mask."""
    info = make_tiny_voc(str(tmp_path / 'voc'), num_train=4, num_val=2)
    xml = {}
    extra_id = info['splits']['train_aug'][1]
    extra = VOC_CLASSES.index(extra_name)
    assert extra not in info['labels'][extra_id]
    for img_id, ids in info['labels'].items():
        objects = [(VOC_CLASSES[c], 0) for c in ids]
        objects += [(VOC_CLASSES[c], 1) for c in ids[:1]]  # repeated
        if img_id == extra_id:
            objects.append((extra_name, 1))  # difficult, not in the mask
        write_voc_annotation(
            osp.join(info['root'], 'Annotations', img_id + '.xml'), objects)
        xml[img_id] = sorted(set(ids) | ({extra} if img_id == extra_id
                                         else set()))
    return info, xml, extra_id


# ------------------------------------------------------------- VOC XML
def test_voc_xml_reader(tmp_path):
    path = str(tmp_path / 'a.xml')
    write_voc_annotation(path, [('person', 0), ('dog', 1), ('person', 1),
                                ('aeroplane', 0)])
    assert read_voc_xml_labels(path, VOC_CLASSES) == [1, 12, 15]
    write_voc_annotation(path, [])
    assert read_voc_xml_labels(path, VOC_CLASSES) == []
    write_voc_annotation(path, [('person', 0), ('unicorn', 0)])
    with pytest.raises(ValueError, match=r"a\.xml.*'unicorn'"):
        read_voc_xml_labels(path, VOC_CLASSES)
    with open(path, 'w') as f:
        f.write('<annotation><object>')
    with pytest.raises(ValueError, match=r'a\.xml.*not a readable'):
        read_voc_xml_labels(path, VOC_CLASSES)
    with pytest.raises(FileNotFoundError, match='missing.xml'):
        read_voc_xml_labels(str(tmp_path / 'missing.xml'), VOC_CLASSES)


def test_voc_dataset_defaults_to_xml_labels(tmp_path):
    info, xml, extra_id = _voc_with_xml(tmp_path)
    ann = 'ImageSets/Segmentation/train_aug.txt'
    ds = _build(type='VOCWSSSDataset', data_root=info['root'], ann_file=ann)
    assert ds.label_source_used == 'xml'
    got = _ids_of(ds)
    assert got == {k: xml[k] for k in info['splits']['train_aug']}
    assert got[extra_id] != info['labels'][extra_id]
    # switched to the masks
    ds = _build(
        type='VOCWSSSDataset',
        data_root=info['root'],
        ann_file=ann,
        label_source='mask')
    assert ds.label_source_used == 'mask'
    assert _ids_of(ds) == {
        k: info['labels'][k]
        for k in info['splits']['train_aug']
    }
    # an XML missing for a listed image is named
    os.remove(osp.join(info['root'], 'Annotations', extra_id + '.xml'))
    with pytest.raises(FileNotFoundError, match=extra_id + r'\.xml'):
        _build(type='VOCWSSSDataset', data_root=info['root'], ann_file=ann)
    # no Annotations folder: auto falls back to the masks, 'xml' is an error
    import shutil
    shutil.rmtree(osp.join(info['root'], 'Annotations'))
    ds = _build(type='VOCWSSSDataset', data_root=info['root'], ann_file=ann)
    assert ds.label_source_used == 'mask'
    for source, error, msg in (('xml', FileNotFoundError, 'Annotations'),
                               ('list', ValueError,
                                'label_source must be one of')):
        with pytest.raises(error, match=msg):
            _build(
                type='VOCWSSSDataset',
                data_root=info['root'],
                ann_file=ann,
                label_source=source)


# ------------------------------------------------------------ COCO list
def _coco_with_list(tmp_path):
    info = make_tiny_coco(str(tmp_path / 'coco'), num_train=4, num_val=2)
    train = info['splits']['train']
    listed = {k: list(info['labels'][k]) for k in train}
    extra_id = train[2]
    extra = COCO_WSSS_CLASSES.index('toothbrush')  # 80
    assert extra not in listed[extra_id]
    listed[extra_id] = sorted(listed[extra_id] + [extra])
    path = osp.join(info['root'], 'coco14', 'train.txt')
    write_coco_label_list(path, listed)
    return info, listed, extra_id, path


def test_coco_label_list_reader(tmp_path):
    path = str(tmp_path / 'train.txt')
    with open(path, 'w') as f:
        f.write('COCO_train2014_000000000009.jpg 45 49 50 45\n'
                'COCO_train2014_000000000025 23\n\n')
    assert read_coco_label_list(path, 81) == {
        'COCO_train2014_000000000009': [46, 50, 51],
        'COCO_train2014_000000000025': [24]
    }
    with open(path, 'w') as f:
        f.write('COCO_train2014_000000000009.jpg 80\n')
    with pytest.raises(ValueError, match=r'train\.txt:1.*\[80\]'):
        read_coco_label_list(path, 81)


def test_coco_dataset_reads_the_label_list(tmp_path):
    info, listed, extra_id, path = _coco_with_list(tmp_path)
    ds = _build(
        type='COCOWSSSDataset',
        data_root=info['root'],
        ann_file='ImageSets/train.txt',
        label_list_file='coco14/train.txt')
    assert ds.label_source_used == 'list'
    assert _ids_of(ds) == listed
    # the label list as the split file itself (names with .jpg and ids)
    ds = _build(
        type='COCOWSSSDataset', data_root=info['root'], ann_file=path)
    assert ds.label_source_used == 'list'
    assert _ids_of(ds) == listed
    assert ds[0]['data_samples'].img_path.endswith('.jpg')
    # the plain split file: masks; 'list' without a list is an error
    ds = _build(
        type='COCOWSSSDataset',
        data_root=info['root'],
        ann_file='ImageSets/train.txt')
    assert ds.label_source_used == 'mask'
    assert _ids_of(ds)[extra_id] == info['labels'][extra_id]
    with pytest.raises(FileNotFoundError, match='label_list_file'):
        _build(
            type='COCOWSSSDataset',
            data_root=info['root'],
            ann_file='ImageSets/train.txt',
            label_source='list')


# ------------------------------------------------- cls_labels_onehot.npy
def test_official_onehot_npy_is_read_and_written(tmp_path):
    info = make_tiny_voc(str(tmp_path / 'voc'), num_train=3, num_val=2)
    # the file as the official repositories ship it
    official = {}
    for img_id, ids in info['labels'].items():
        vec = np.zeros(20, np.float32)
        vec[[i - 1 for i in ids]] = 1
        official[img_id] = vec
    path = str(tmp_path / 'cls_labels_onehot.npy')
    np.save(path, official)
    assert read_labels_file(path, num_classes=21) == info['labels']
    ds = _build(
        type='VOCWSSSDataset',
        data_root=info['root'],
        ann_file='ImageSets/Segmentation/val.txt',
        cls_labels_file=path)
    assert ds.label_source_used == 'file'
    assert _ids_of(ds) == {k: info['labels'][k] for k in info['splits']['val']}
    # a COCO-length file for VOC is refused naming both lengths
    np.save(path, {k: np.zeros(80, np.float32) for k in official})
    with pytest.raises(ValueError, match='80 entries.*20 foreground'):
        read_onehot_npy(path, num_classes=21)
    # our writer gives the official layout back
    out = str(tmp_path / 'out' / 'cls_labels_onehot.npy')
    write_onehot_npy(out, info['labels'], num_classes=21)
    back = np.load(out, allow_pickle=True).item()
    assert set(back) == set(official)
    for k, vec in back.items():
        assert vec.dtype == np.float32 and vec.shape == (20, )
        np.testing.assert_array_equal(vec, official[k])


# ------------------------------------------------------------ converters
def _run(name, *args):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [REPO] + os.environ.get('PYTHONPATH', '').split(os.pathsep)))
    proc = subprocess.run(
        [sys.executable, osp.join(TOOLS, name), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_voc_converter_sources_and_report(tmp_path):
    info, xml, extra_id = _voc_with_xml(tmp_path)
    out = tmp_path / 'cls_labels_onehot.npy'
    log = _run('voc_image_labels.py', info['root'], '--split', 'train_aug',
               'val', '--out', out)
    assert 'train_aug: 1 of 4 images have labels that differ between xml ' \
        'and mask' in log
    assert 'val: 0 of 2 images' in log
    assert extra_id in log
    assert read_onehot_npy(str(out), num_classes=21) == xml
    out_json = tmp_path / 'mask.json'
    log = _run('voc_image_labels.py', info['root'], '--split', 'train_aug',
               'val', '--source', 'mask', '--out', out_json)
    assert 'labels from mask' in log
    assert read_labels_file(str(out_json), num_classes=21) == info['labels']


def test_coco_converter_label_list_and_report(tmp_path):
    info, listed, extra_id, _ = _coco_with_list(tmp_path)
    out = tmp_path / 'cls_labels_onehot.npy'
    log = _run('coco_image_labels.py', info['root'], '--split', 'train',
               '--label-list', 'coco14/train.txt', '--out', out)
    assert 'train: 1 of 4 images have labels that differ between list ' \
        'and mask' in log
    assert read_onehot_npy(str(out), num_classes=81) == listed
    log = _run('coco_image_labels.py', info['root'], '--split', 'train',
               '--label-list', 'coco14/train.txt', '--source', 'mask',
               '--no-compare', '--out', tmp_path / 'm.json')
    assert 'differ' not in log
    assert read_labels_file(str(tmp_path / 'm.json'))[extra_id] == \
        info['labels'][extra_id]

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/dataset_converters/{voc,coco}_image_labels.py (EXCEL.md §8.1)."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmseg_excel.datasets import read_labels_file
from mmseg_excel.testing.tiny_datasets import (make_tiny_coco, make_tiny_voc,
                                               write_mask)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools', 'dataset_converters')


def run_tool(name, *args):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(
            [REPO] + os.environ.get('PYTHONPATH', '').split(os.pathsep)))
    return subprocess.run(
        [sys.executable,
         osp.join(TOOLS, name), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO)


def load_tool(name):
    """Import a converter script as a module (in-process runs are faster)."""
    spec = importlib.util.spec_from_file_location(name[:-3],
                                                  osp.join(TOOLS, name))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_voc_converter_cli_writes_exact_labels(tmp_path):
    info = make_tiny_voc(str(tmp_path / 'voc'), num_train=5, num_val=3)
    out = tmp_path / 'labels.json'
    proc = run_tool('voc_image_labels.py', info['root'], '--split',
                    'train_aug', 'val', '--out', out)
    assert proc.returncode == 0, proc.stderr
    labels = read_labels_file(str(out), num_classes=21)
    expected = {
        k: info['labels'][k]
        for k in info['splits']['train_aug'] + info['splits']['val']
    }
    assert labels == expected
    assert labels[info['bg_only_id']] == []


def test_coco_converter_writes_exact_labels(tmp_path):
    info = make_tiny_coco(str(tmp_path / 'coco'), num_train=4, num_val=3)
    out = tmp_path / 'labels.json'
    load_tool('coco_image_labels.py').main(
        [info['root'], '--split', 'train', 'val', '--out',
         str(out)])
    assert read_labels_file(str(out), num_classes=81) == info['labels']
    # worker processes give the same file
    out2 = tmp_path / 'labels2.json'
    load_tool('coco_image_labels.py').main(
        [info['root'], '--out',
         str(out2), '--nproc', '2'])
    assert read_labels_file(str(out2)) == info['labels']


def test_converter_errors_name_the_file(tmp_path):
    info = make_tiny_voc(str(tmp_path / 'voc'), num_train=3, num_val=1)
    tool = load_tool('voc_image_labels.py')
    with pytest.raises(FileNotFoundError, match='missing_root'):
        tool.main([str(tmp_path / 'missing_root')])
    with pytest.raises(FileNotFoundError, match='nosplit.txt'):
        tool.main([info['root'], '--split', 'nosplit'])
    img_id = info['splits']['train_aug'][1]
    mask = np.array(Image.open(info['mask_paths'][img_id]))
    mask[0, 0] = 30
    write_mask(info['mask_paths'][img_id], mask)
    out = tmp_path / 'l.json'
    with pytest.raises(ValueError, match=rf'{img_id}\.png.*\[30\]'):
        tool.main([info['root'], '--split', 'train_aug', '--out', str(out)])
    assert not out.exists()
    os.remove(info['mask_paths'][img_id])
    with pytest.raises(FileNotFoundError, match=rf'{img_id}\.png'):
        tool.main([info['root'], '--split', 'train_aug', '--out', str(out)])


@pytest.mark.parametrize('use_file', [True, False])
def test_dataset_reads_converter_output(tmp_path, use_file):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    info = make_tiny_voc(str(tmp_path / 'voc'), num_train=4, num_val=2)
    out = tmp_path / 'labels.json'
    load_tool('voc_image_labels.py').main([info['root'], '--out', str(out)])
    ds = DATASETS.build(
        dict(
            type='VOCWSSSDataset',
            data_root=info['root'],
            ann_file='ImageSets/Segmentation/val.txt',
            cls_labels_file=str(out) if use_file else None,
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadImageLevelLabels'),
                dict(type='PackWSSSInputs')
            ]))
    for idx in range(len(ds)):
        s = ds[idx]['data_samples']
        ids = info['labels'][s.metainfo['img_id']]
        assert np.flatnonzero(
            s.gt_cls_label.numpy()).tolist() == [i - 1 for i in ids]

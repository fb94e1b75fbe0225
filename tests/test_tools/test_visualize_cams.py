# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/analysis_tools/visualize_cams.py on toy-world images: the picture
(image | pseudo label, a CAM row and a refined row per named class), the
trained (LVC) variant with a shipped checkpoint, and input errors."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs' / 'toy_world' /
             'excel_toy-clip_1xb8-1k_toy-world-96x96.py')
CKPT = str(ROOT / 'mmseg_excel' / 'data' / 'toy_world_models' / 'excel.pth')
sys.path.insert(0, str(ROOT / 'tools' / 'analysis_tools'))
sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))
T = 14  # title strip of WSSSVisualizer


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    import make_dataset
    root = tmp_path_factory.mktemp('vis_world')
    make_dataset.main([
        '--out', str(root), '--seed', '3', '--num-train', '1', '--num-val',
        '1', '--num-test', '2', '--size', '96'
    ])
    return root


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)  # the config's toy-CLIP paths are relative


def test_named_classes(world, tmp_path, capsys):
    import visualize_cams
    img = world / 'JPEGImages' / 'val_000000.png'
    written = visualize_cams.main([
        CONFIG, str(img), '--out-dir', str(tmp_path), '--classes', 'fish',
        'apple', '--device', 'cpu'
    ])
    assert written == [str(tmp_path / 'val_000000.png')]
    assert 'ETA' in capsys.readouterr().out  # progress bar over the images
    pic = np.asarray(Image.open(written[0]))
    # rows: image | pseudo label; CAM: apple, fish; refined: apple, fish
    assert pic.shape == (3 * (96 + T), 2 * 96, 3), pic.shape
    np.testing.assert_array_equal(
        pic[T:T + 96, :96], np.asarray(Image.open(img).convert('RGB')))
    # the pseudo panel shows only background, apple (1) and fish (8): each
    # pixel is the image blended at alpha 0.8 with one of their VOC colours
    # (class-name boxes aside)
    pseudo = pic[T:T + 96, 96:].astype(np.float64)
    image = np.asarray(Image.open(img).convert('RGB')).astype(np.float64)
    palette = {0: (0, 0, 0), 1: (128, 0, 0), 8: (64, 0, 0)}
    err = np.stack([
        np.abs(pseudo - (0.2 * image + 0.8 * np.asarray(c))).max(-1)
        for c in palette.values()
    ]).min(0)
    assert (err <= 1.5).mean() > 0.9, (err <= 1.5).mean()
    assert not (pic[2 * T + 96:2 * T + 192] == 255).all()


def test_all_classes_and_trained_checkpoint(world, tmp_path):
    import visualize_cams
    img = world / 'JPEGImages' / 'test_000000.png'
    written = visualize_cams.main([
        CONFIG, str(img), '--out-dir', str(tmp_path), '--checkpoint', CKPT,
        '--max-maps', '3', '--device', 'cpu'
    ])
    pic = np.asarray(Image.open(written[0]))
    # 8 foreground classes, 3 drawn per row
    assert pic.shape == (3 * (96 + T), 3 * 96, 3), pic.shape


def test_errors(world, tmp_path):
    import visualize_cams
    img = str(world / 'JPEGImages' / 'test_000000.png')
    with pytest.raises(ValueError, match="unknown class name.*'dog'"):
        visualize_cams.main(
            [CONFIG, img, '--out-dir', str(tmp_path), '--classes', 'dog'])
    with pytest.raises(FileNotFoundError, match='image not found'):
        visualize_cams.main(
            [CONFIG, img + '.missing', '--out-dir', str(tmp_path)])
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not a png')
    with pytest.raises(OSError, match='cannot read image'):
        visualize_cams.main(
            [CONFIG, str(bad), '--out-dir', str(tmp_path), '--device',
             'cpu'])
    assert os.path.isdir(tmp_path)

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""WSSSVisualizer: panel layout, label colours (palette, ignore = white),
heat-map colours (mmengine's JET over the image), files of the backends."""
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_excel.visualization import IGNORE_COLOR, WSSSVisualizer

CLASSES = ['background', 'cat', 'dog']
PALETTE = [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
H, W, T = 40, 60, 14  # image size, title strip


def _vis(**kw):
    return WSSSVisualizer(classes=CLASSES, palette=PALETTE, **kw)


def _inputs():
    img = np.full((H, W, 3), 100, np.uint8)
    cams = torch.zeros(2, 10, 15)
    cams[0, 2:5, 3:8] = 1  # → rows 8:20, cols 12:32 at image size
    lab = np.zeros((H, W), np.int64)
    lab[10:20, 10:30] = 1
    lab[0, 0] = 255
    return img, cams, lab


def test_dataset_meta_not_swapped():
    v = _vis()
    assert v.dataset_meta['classes'] == CLASSES
    assert v.dataset_meta['palette'] == PALETTE


def test_layout_and_pixel_colours():
    v = _vis(alpha=0.8, cam_alpha=0.5)
    img, cams, lab = _inputs()
    out = v.draw_wsss_sample(
        img, maps={'CAM': cams}, map_classes=[1, 2], pseudo_label=lab,
        gt=lab)
    # row 1: image | pseudo | gt; row 2: 2 CAMs (padded to 3 panels)
    assert out.shape == (2 * (H + T), 3 * W, 3)
    np.testing.assert_array_equal(out[T:, :W][:H], img)
    pseudo = out[T:T + H, W:2 * W]
    # label 1 blended over the image: 0.2 * 100 + 0.8 * (128, 0, 0)
    np.testing.assert_allclose(pseudo[15, 15], [122, 20, 20], atol=1)
    np.testing.assert_array_equal(pseudo[0, 0], IGNORE_COLOR)
    np.testing.assert_allclose(pseudo[35, 50], [20, 20, 20], atol=1)
    cam_a = out[2 * T + H:, :W]
    # map maximum → JET dark red (127, 0, 0) at alpha 0.5 over grey 100
    np.testing.assert_allclose(cam_a[15, 20], [114, 50, 50], atol=2)
    # map minimum → JET dark blue (0, 0, 127)
    np.testing.assert_allclose(cam_a[35, 50], [50, 50, 114], atol=2)
    # padding of the shorter row is white
    assert (out[2 * T + H:, 2 * W:] == 255).all()


def test_backend_and_out_file(tmp_path):
    v = _vis(save_dir=str(tmp_path),
             vis_backends=[dict(type='LocalVisBackend')],
             name='test_vis_backend')
    img, cams, lab = _inputs()
    v.add_wsss_sample('sample', img, step=3, maps={'LVC': cams},
                      map_classes=[1, 2], pseudo_label=lab)
    f = tmp_path / 'vis_data' / 'vis_image' / 'sample_3.png'
    assert f.is_file()
    assert mmcv.imread(str(f)).shape == (2 * (H + T), 2 * W, 3)
    out = tmp_path / 'x' / 'direct.png'
    drawn = v.add_wsss_sample('s', img, out_file=str(out), pseudo_label=lab)
    back = mmcv.imread(str(out), channel_order='rgb')
    np.testing.assert_array_equal(back, drawn)


def test_add_datasample_draws_pred_and_gt(tmp_path):
    v = _vis(name='test_vis_datasample')
    img, _, lab = _inputs()
    ds = SegDataSample()
    ds.pred_sem_seg = PixelData(data=torch.from_numpy(lab)[None])
    ds.gt_sem_seg = PixelData(data=torch.full((1, H, W), 2))
    out = tmp_path / 'pred.png'
    v.add_datasample('s', img, ds, out_file=str(out))
    drawn = mmcv.imread(str(out), channel_order='rgb')
    assert drawn.shape == (H + T, 3 * W, 3)
    np.testing.assert_allclose(drawn[T + 15, W + 15], [122, 20, 20], atol=1)
    np.testing.assert_allclose(drawn[T + 15, 2 * W + 15], [20, 122, 20],
                               atol=1)


def test_bad_inputs():
    v = _vis(name='test_vis_bad')
    img, cams, lab = _inputs()
    with pytest.raises(ValueError, match='3 classes'):
        v.draw_wsss_sample(img, pseudo_label=np.full((H, W), 5))
    with pytest.raises(ValueError, match='map_classes'):
        v.draw_wsss_sample(img, maps={'CAM': cams}, map_classes=[1])
    with pytest.raises(ValueError, match='RGB'):
        v.draw_wsss_sample(img[..., 0])
    with pytest.raises(ValueError, match='cam_alpha'):
        _vis(name='test_vis_bad2', cam_alpha=2)

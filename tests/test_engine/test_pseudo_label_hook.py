# Copyright (c) mmseg-excel contributors. All rights reserved.
"""PseudoLabelHook: iteration switches (idempotent, resume-safe), pictures."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mmseg_excel.engine.hooks import PseudoLabelHook


class _Model:

    def __init__(self):
        self.it = None
        self.vis_requested = False
        self.vis_cache = None

    def set_train_iter(self, it):
        self.it = it


class _Vis:

    def __init__(self):
        self.images = []

    def add_image(self, name, image, step):
        self.images.append((name, image, step))


def _runner(model, it):
    palette = [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    ds = SimpleNamespace(
        metainfo=dict(classes=('background', 'a', 'b'), palette=palette))
    return SimpleNamespace(
        model=model, iter=it, visualizer=_Vis(),
        train_dataloader=SimpleNamespace(dataset=ds))


def test_sets_iteration_every_step_and_after_resume():
    hook, model = PseudoLabelHook(), _Model()
    for it in (0, 1, 13999, 14000, 20000):
        hook.before_train_iter(_runner(model, it), 0)
        assert model.it == it
    # resumed run: first call already past the switch
    model2 = _Model()
    hook.before_train_iter(_runner(model2, 25000), 0)
    assert model2.it == 25000


def test_requests_and_draws_pictures():
    hook, model = PseudoLabelHook(vis_interval=5, max_vis_classes=2), _Model()
    runner = _runner(model, 3)
    hook.before_train_iter(runner, 0)
    assert model.vis_requested is False
    runner = _runner(model, 4)  # (4 + 1) % 5 == 0
    hook.before_train_iter(runner, 0)
    assert model.vis_requested is True
    h, w, t = 6, 8, 14  # t: the visualizer's title strip
    model.vis_cache = dict(
        image=torch.full((3, h, w), 200, dtype=torch.uint8),
        cams=torch.rand(3, h, w),
        cam_classes=[1, 2, 1],
        lvc=False,
        pseudo_label=torch.tensor([[0, 1, 2, 255] * 2] * h),
        pred=torch.ones(h, w, dtype=torch.long))
    hook.after_train_iter(runner, 0)
    name, grid, step = runner.visualizer.images[0]
    assert name == 'pseudo_labels' and step == 5
    # row 1: image | pseudo | pred; row 2: 2 CAMs (max_vis_classes)
    assert grid.shape == (2 * (h + t), 3 * w, 3)
    pseudo = grid[t:t + h, w:2 * w]
    # class 1 at alpha 0.8 over the grey 200 image; 255 is white
    np.testing.assert_allclose(pseudo[0, 1], [142, 40, 40], atol=1)
    np.testing.assert_array_equal(pseudo[0, 3], [255, 255, 255])
    # the third panel of the CAM row is white padding: only 2 maps drawn
    assert (grid[2 * t + h:, 2 * w:] == 255).all()
    assert not (grid[2 * t + h:, w:2 * w] == 255).all()
    assert model.vis_cache is None and model.vis_requested is False


def test_bad_arguments():
    with pytest.raises(ValueError, match='vis_interval'):
        PseudoLabelHook(vis_interval=-1)
    with pytest.raises(TypeError, match='set_train_iter'):
        PseudoLabelHook().before_train(_runner(object(), 0))

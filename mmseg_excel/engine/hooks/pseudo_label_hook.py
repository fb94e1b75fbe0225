# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Pseudo-label hook: drives the iteration switches of ExCEL (§4, §7.2, §8.3).

The hook tells the model the current iteration before every training step
(``model.set_train_iter(runner.iter)``); the model derives every switch as
``iter >= switch_iter`` from its own config (LVC on, decoder affinity in the
refinement, affinity target switched to the prediction). Deriving the switches
from the iteration (never on equality) makes them idempotent and correct after
``--resume``.

It also logs pseudo-label statistics (the model returns them next to its
losses under names without ``loss``) and, every ``vis_interval`` iterations,
asks the model ahead of time to keep a small detached copy of image, CAMs,
pseudo labels and prediction, which it draws through mmengine's visualizer.
"""
from typing import Optional, Sequence

import numpy as np
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


def _colorize(label: np.ndarray, palette: Sequence[Sequence[int]]):
    """Class-id map (H, W) → RGB with the dataset palette; 255 → white."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    pal[255] = 255
    pal[:len(palette)] = np.asarray(palette, dtype=np.uint8)
    return pal[label.astype(np.int64).clip(0, 255)]


def _heat(cam: np.ndarray) -> np.ndarray:
    """[0, 1] map (H, W) → RGB heat map (blue → red), no cv2 needed."""
    cam = np.clip(cam, 0, 1)
    rgb = np.stack([cam, 1 - np.abs(2 * cam - 1), 1 - cam], axis=-1)
    return (rgb * 255).astype(np.uint8)


@HOOKS.register_module()
class PseudoLabelHook(Hook):
    """Iteration switches, pseudo-label statistics and pictures for ExCEL.

    Args:
        vis_interval: draw a picture every this many iterations (0: never).
        max_vis_classes: CAMs drawn per picture.
    """

    priority = 'NORMAL'

    def __init__(self, vis_interval: int = 0, max_vis_classes: int = 3):
        if vis_interval < 0:
            raise ValueError(f'vis_interval must be >= 0, got {vis_interval}')
        self.vis_interval = vis_interval
        self.max_vis_classes = max_vis_classes

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if not hasattr(model, 'set_train_iter'):
            raise TypeError(
                f'PseudoLabelHook needs a model with set_train_iter(); '
                f'{type(model).__name__} has none')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        model = self._model(runner)
        model.set_train_iter(runner.iter)
        if hasattr(model, 'vis_requested'):
            model.vis_requested = bool(
                self.vis_interval
                and self.every_n_train_iters(runner, self.vis_interval))

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        model = self._model(runner)
        vis = getattr(model, 'vis_cache', None)
        if not getattr(model, 'vis_requested', False) or vis is None:
            return
        model.vis_requested = False
        model.vis_cache = None
        palette = runner.train_dataloader.dataset.metainfo.get('palette')
        if palette is None:
            raise KeyError('the training dataset has no palette in metainfo')
        img = vis['image']  # (3, H, W) uint8 RGB
        panels = [img.permute(1, 2, 0).numpy()]
        cams = vis.get('cams')  # (K, H, W) in [0, 1]
        if cams is not None:
            for k in range(min(self.max_vis_classes, cams.shape[0])):
                heat = _heat(cams[k].numpy())
                panels.append((0.5 * heat + 0.5 * panels[0]).astype(np.uint8))
        panels.append(_colorize(vis['pseudo_label'].numpy(), palette))
        if vis.get('pred') is not None:
            panels.append(_colorize(vis['pred'].numpy(), palette))
        grid = np.concatenate(panels, axis=1)
        runner.visualizer.add_image(
            'pseudo_labels', grid, step=runner.iter + 1)


__all__ = ['PseudoLabelHook']

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Pseudo-label hook: drives the iteration switches of ExCEL
(docs/methods/excel.md §4, §7.2, §8.3).

The hook tells the model the current iteration before every training step
(``model.set_train_iter(runner.iter)``); the model derives every switch as
``iter >= switch_iter`` from its own config (LVC on, decoder affinity in the
refinement, affinity target switched to the prediction). Deriving the switches
from the iteration (never on equality) makes them idempotent and correct after
``--resume``.

It also logs pseudo-label statistics (the model returns them next to its
losses under names without ``loss``) and, every ``vis_interval`` iterations,
asks the model ahead of time to keep a small detached copy of image, CAMs,
pseudo labels and prediction, which :class:`WSSSVisualizer` draws and sends
to the runner's vis backends (local files, TensorBoard, ...).
"""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from mmseg_excel.visualization import WSSSVisualizer


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
        meta = runner.train_dataloader.dataset.metainfo
        if meta.get('palette') is None:
            raise KeyError('the training dataset has no palette in metainfo')
        visualizer = runner.visualizer
        if not isinstance(visualizer, WSSSVisualizer):
            # draw with a backend-less WSSSVisualizer, send through the
            # runner's visualizer (any mmengine Visualizer has add_image)
            visualizer = WSSSVisualizer(
                name='pseudo_label_hook', max_maps=self.max_vis_classes)
        visualizer.set_dataset_meta(
            list(meta['classes']), list(meta['palette']))
        visualizer.max_maps = self.max_vis_classes
        lvc = vis.get('lvc')
        kind = 'LVC' if lvc else 'CAM'
        maps = {kind: vis['cams']} if vis.get('cams') is not None else None
        drawn = visualizer.draw_wsss_sample(
            vis['image'].permute(1, 2, 0).numpy(),
            maps=maps,
            map_classes=vis.get('cam_classes'),
            pseudo_label=vis['pseudo_label'],
            pred=vis.get('pred'))
        runner.visualizer.add_image('pseudo_labels', drawn,
                                    step=runner.iter + 1)

__all__ = ['PseudoLabelHook']

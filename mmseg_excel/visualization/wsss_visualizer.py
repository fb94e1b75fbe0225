# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Pictures of weakly supervised segmentation: image, per-class maps (CAM,
refined, LVC) as heat maps, pseudo label, prediction and ground truth.

:class:`WSSSVisualizer` extends mmseg's ``SegLocalVisualizer``: label maps
are drawn by mmseg (dataset palette, class names), heat maps by mmengine's
``draw_featmap`` (JET colour map over the image), and the picture goes to
every configured mmengine vis backend (local files, TensorBoard, ...). It is
the visualizer of every mmseg-excel config (``configs/_base_/
default_runtime.py``), so the pseudo-label hook, ``tools/test.py
--show-dir``, ``tools/generate_pseudo_labels.py --show-dir`` and
``tools/analysis_tools/visualize_cams.py`` all draw the same way
(docs/visualization.md).
"""
from typing import Dict, List, Optional, Sequence, Union

import cv2
import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import master_only
from mmengine.structures import PixelData
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

ArrayLike = Union[np.ndarray, torch.Tensor]

#: colour of ignored pixels (label 255) in label panels
IGNORE_COLOR = (255, 255, 255)


def _np(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else \
        np.asarray(x)


@VISUALIZERS.register_module()
class WSSSVisualizer(SegLocalVisualizer):
    """mmseg visualizer with the WSSS panels (docs/visualization.md).

    Args:
        cam_alpha: weight of the heat map over the image (mmengine's
            ``draw_featmap`` ``alpha``).
        max_maps: per-class maps drawn per map kind (the first ones).
        title_height: height in pixels of the title strip above each panel
            (0: no titles).
        **kwargs: ``SegLocalVisualizer`` arguments (``vis_backends``,
            ``save_dir``, ``alpha`` of the label colours, ``classes``,
            ``palette``).
    """

    def __init__(self,
                 name: str = 'visualizer',
                 cam_alpha: float = 0.5,
                 max_maps: int = 4,
                 title_height: int = 14,
                 **kwargs) -> None:
        classes = kwargs.pop('classes', None)
        palette = kwargs.pop('palette', None)
        dataset_name = kwargs.pop('dataset_name', None)
        super().__init__(name, **kwargs)
        # SegLocalVisualizer passes (palette, classes) in swapped order
        self.set_dataset_meta(classes, palette, dataset_name)
        if not 0 <= cam_alpha <= 1:
            raise ValueError(f'cam_alpha must be in [0, 1], got {cam_alpha}')
        self.cam_alpha = cam_alpha
        self.max_maps = max_maps
        self.title_height = title_height

    # ------------------------------------------------------------------
    # panels
    def heat_panel(self, image: np.ndarray, cam: ArrayLike) -> np.ndarray:
        """One map (H, W) as a JET heat map over ``image`` (H', W', 3 RGB);
        the map is bilinearly resized to the image and min–max normalised
        by mmengine's ``draw_featmap``."""
        cam = torch.as_tensor(_np(cam), dtype=torch.float32)
        if cam.ndim != 2:
            raise ValueError(f'a map must be (H, W), got {tuple(cam.shape)}')
        size = image.shape[:2]
        if tuple(cam.shape) != tuple(size):
            cam = F.interpolate(
                cam[None, None], size, mode='bilinear',
                align_corners=False)[0, 0]
        return self.draw_featmap(
            cam[None], image, channel_reduction=None, topk=0,
            alpha=self.cam_alpha)

    def label_panel(self,
                    image: np.ndarray,
                    label: ArrayLike,
                    with_labels: bool = True) -> np.ndarray:
        """A class-id map (H, W) over ``image`` with the dataset palette and
        class names (mmseg's ``_draw_sem_seg``); 255 → white."""
        label = _np(label).astype(np.int64)
        if label.ndim == 3:
            label = label[0]
        if label.shape != image.shape[:2]:
            image = mmcv.imresize(image, label.shape[::-1])
        classes = self.dataset_meta['classes']
        palette = self.dataset_meta['palette']
        if label[label != 255].size and label[label != 255].max() >= len(
                classes):
            raise ValueError(
                f'label map holds class {int(label[label != 255].max())} but '
                f'the visualizer knows {len(classes)} classes; set its '
                'dataset_meta to the dataset\'s')
        panel = self._draw_sem_seg(
            image, PixelData(data=torch.from_numpy(label)[None]), classes,
            palette, with_labels)
        panel = panel.copy()
        panel[label == 255] = IGNORE_COLOR
        return panel

    def _titled(self, panel: np.ndarray, title: str) -> np.ndarray:
        if not self.title_height:
            return panel
        strip = np.full((self.title_height, panel.shape[1], 3), 255,
                        np.uint8)
        scale = max(self.title_height / 36, 0.25)
        cv2.putText(strip, title, (2, self.title_height - 4),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
        return np.concatenate([strip, panel], 0)

    @staticmethod
    def _grid(rows: List[List[np.ndarray]]) -> np.ndarray:
        """Rows of equally sized panels, right-padded with white."""
        width = max(sum(p.shape[1] for p in r) for r in rows)
        out = []
        for r in rows:
            row = np.concatenate(r, 1)
            if row.shape[1] < width:
                pad = np.full((row.shape[0], width - row.shape[1], 3), 255,
                              np.uint8)
                row = np.concatenate([row, pad], 1)
            out.append(row)
        return np.concatenate(out, 0)

    # ------------------------------------------------------------------
    def draw_wsss_sample(
            self,
            image: np.ndarray,
            maps: Optional[Dict[str, ArrayLike]] = None,
            map_classes: Optional[Sequence[int]] = None,
            pseudo_label: Optional[ArrayLike] = None,
            pred: Optional[ArrayLike] = None,
            gt: Optional[ArrayLike] = None,
            with_labels: bool = True) -> np.ndarray:
        """The WSSS picture of one image, as an RGB array.

        Row 1: image | pseudo label | prediction | ground truth (those given).
        One more row per entry of ``maps`` (e.g. ``{'CAM': cams, 'LVC':
        lvc}``, each (K, H, W)): the first ``max_maps`` per-class heat maps,
        titled with the class name of ``map_classes[k]`` (class ids of the
        dataset, background 0).

        Args:
            image: (H, W, 3) uint8 RGB.
            maps: per-class maps by kind, each (K, h, w), any size.
            map_classes: dataset class id of each of the K channels.
            pseudo_label, pred, gt: class-id maps (H, W); 255 = ignored.
            with_labels: write class names on the label panels.
        """
        image = np.ascontiguousarray(_np(image).astype(np.uint8))
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'image must be (H, W, 3) RGB, got '
                             f'{image.shape}')
        classes = self.dataset_meta['classes']
        first = [self._titled(image, 'image')]
        for title, lab in (('pseudo label', pseudo_label), ('prediction',
                                                            pred),
                           ('ground truth', gt)):
            if lab is not None:
                panel = self.label_panel(image, lab, with_labels)
                if panel.shape[:2] != image.shape[:2]:
                    panel = mmcv.imresize(panel, image.shape[1::-1],
                                          interpolation='nearest')
                first.append(self._titled(panel, title))
        rows = [first]
        for kind, stack in (maps or {}).items():
            stack = _np(stack)
            if stack.ndim != 3:
                raise ValueError(f'maps[{kind!r}] must be (K, H, W), got '
                                 f'{stack.shape}')
            k = min(self.max_maps, stack.shape[0])
            if map_classes is not None and len(map_classes) < k:
                raise ValueError(
                    f'maps[{kind!r}] has {stack.shape[0]} channels but '
                    f'map_classes names {len(map_classes)}')
            row = []
            for i in range(k):
                name = (classes[int(map_classes[i])]
                        if map_classes is not None else f'#{i}')
                row.append(
                    self._titled(
                        self.heat_panel(image, stack[i]), f'{kind}: {name}'))
            if row:
                rows.append(row)
        return self._grid(rows)

    @master_only
    def add_wsss_sample(self,
                        name: str,
                        image: np.ndarray,
                        step: int = 0,
                        out_file: Optional[str] = None,
                        show: bool = False,
                        wait_time: float = 0,
                        **kwargs) -> np.ndarray:
        """Draw :meth:`draw_wsss_sample` and send it to the vis backends
        (``add_image``), to ``out_file`` (PNG) and/or to a window."""
        drawn = self.draw_wsss_sample(image, **kwargs)
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(name, drawn, step)
        return drawn

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        """mmseg's entry point (``SegVisualizationHook``, ``tools/test.py
        --show-dir``): image | prediction | ground truth, ignored pixels
        white, and the per-class maps a sample carries (``cams``: (K, H, W)
        with ``cam_classes``)."""
        pred = gt = maps = classes = None
        if data_sample is not None:
            if draw_pred and 'pred_sem_seg' in data_sample:
                pred = data_sample.pred_sem_seg.data[0]
            if draw_gt and 'gt_sem_seg' in data_sample:
                gt = data_sample.gt_sem_seg.data[0]
            if 'cams' in data_sample:
                maps = {'CAM': data_sample.cams}
                classes = data_sample.get('cam_classes')
        self.add_wsss_sample(
            name,
            image,
            step=step,
            out_file=out_file,
            show=show,
            wait_time=wait_time,
            maps=maps,
            map_classes=classes,
            pred=pred,
            gt=gt,
            with_labels=bool(with_labels))


__all__ = ['WSSSVisualizer', 'IGNORE_COLOR']

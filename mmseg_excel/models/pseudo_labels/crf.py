# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Dense CRF post-processing (pydensecrf) for ExCEL and CLIP-ES.

ExCEL test time (docs/methods/excel.md §9.2): uint8 RGB image, ``unary =
−log(prob)``.
CLIP-ES pseudo masks (docs/methods/clip_es.md §6.2-6.3): the bilateral image is
the BGR
image minus ``mean_bgr`` cast to uint8 with wrap-around (official behaviour 7),
the
probabilities and the unary are computed in float16, and pixels whose
posterior maximum is below ``confidence_threshold`` become ``ignore_index``.

The CRF runs on the CPU with numpy (pydensecrf has no batched/GPU path);
tensors are moved to the CPU here and results come back as tensors on the
device of the probabilities. pydensecrf holds the GIL, so a batch runs in a
pool of ``num_workers`` processes (forked once per process and kept) when
configured, else image after image on the calling thread.
"""
import atexit
import multiprocessing as mp
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmseg.registry import MODELS
from torch import Tensor

try:
    import pydensecrf.densecrf as dcrf
except ImportError:  # pragma: no cover - depends on the environment
    dcrf = None

ArrayLike = Union[Tensor, np.ndarray]

#: the CRF worker pools of this process, by (pid, worker count)
_POOLS: Dict[Tuple[int, int], object] = {}


def crf_pool(num_workers: int):
    """The process pool of ``num_workers`` CRF workers (created on first
    use, forked where the platform allows, terminated at exit)."""
    key = (os.getpid(), num_workers)
    pool = _POOLS.get(key)
    if pool is None:
        methods = mp.get_all_start_methods()
        ctx = mp.get_context('fork' if 'fork' in methods else None)
        pool = ctx.Pool(num_workers)
        _POOLS[key] = pool
        atexit.register(pool.terminate)
    return pool


def _inference_job(job) -> np.ndarray:
    crf, image, prob, prepared = job
    return crf.inference_single(image, prob, prepared)


class _Ready:
    """An already computed result with the ``get()`` of an ``AsyncResult``."""

    def __init__(self, value) -> None:
        self.value = value

    def get(self, timeout: Optional[float] = None):
        return self.value


def _np(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)


def mean_subtracted_uint8(image_bgr: ArrayLike,
                          mean_bgr: Sequence[float],
                          wrap: bool = True) -> np.ndarray:
    """CLIP-ES bilateral image: ``uint8(float32(BGR) − mean_bgr)``.

    ``wrap=True`` reproduces the x86 cast (truncate toward zero, modulo 256:
    −5.3 → 251) deterministically; ``wrap=False`` saturates to [0, 255].
    """
    x = _np(image_bgr).astype(np.float32) - np.asarray(mean_bgr, np.float32)
    x = np.trunc(x)
    if wrap:
        return np.ascontiguousarray(
            np.mod(x.astype(np.int64), 256).astype(np.uint8))
    return np.ascontiguousarray(np.clip(x, 0, 255).astype(np.uint8))


def clip_es_prob(cams_fp16: ArrayLike, bg_power: float = 1.0) -> np.ndarray:
    """CLIP-ES CRF input ``[(1 − max_k cam)^p; cams]`` computed in float16."""
    cams = _np(cams_fp16).astype(np.float16)
    bg = np.power(1 - np.max(cams, axis=0, keepdims=True), bg_power)
    return np.concatenate([bg.astype(np.float16), cams], axis=0)


@MODELS.register_module()
class DenseCRF:
    """Fully connected CRF with a Gaussian and a bilateral kernel.

    Args:
        iter_max: mean-field iterations (10).
        pos_xy_std, pos_w: Gaussian kernel ``sxy`` and ``compat`` (1, 3).
        bi_xy_std, bi_rgb_std, bi_w: bilateral ``sxy``, ``srgb``, ``compat``
            (67, 3, 4).
        image_mode: ``'rgb'`` (ExCEL: the uint8 RGB image as is) or
            ``'clip_es'`` (RGB → BGR, minus ``mean_bgr``, cast to uint8).
        mean_bgr: CLIP-ES mean (104.008, 116.669, 122.675).
        wrap_uint8: CLIP-ES cast wraps negatives (faithful, default) or
            saturates (False).
        unary_dtype: ``'float32'`` or ``'float16'`` (CLIP-ES: the fp16
            probability's clip and log run in fp16, then cast to fp32).
        clip: lower clip of the probabilities before ``−log`` (1e-5).
        confidence_threshold: μ; pixels with ``max Q < μ`` get
            ``ignore_index`` in :meth:`predict` (None disables; CLIP-ES 0.95).
        ignore_index: label of ignored pixels (255).
        num_workers: processes a batch is spread over (0: one image after
            the other on the calling thread). Results are identical.
    """

    def __init__(self,
                 iter_max: int = 10,
                 pos_xy_std: float = 1,
                 pos_w: float = 3,
                 bi_xy_std: float = 67,
                 bi_rgb_std: float = 3,
                 bi_w: float = 4,
                 image_mode: str = 'rgb',
                 mean_bgr: Sequence[float] = (104.008, 116.669, 122.675),
                 wrap_uint8: bool = True,
                 unary_dtype: str = 'float32',
                 clip: float = 1e-5,
                 confidence_threshold: Optional[float] = None,
                 ignore_index: int = 255,
                 num_workers: int = 0) -> None:
        if dcrf is None:
            raise ImportError(
                'DenseCRF needs pydensecrf: pip install pydensecrf2')
        if image_mode not in ('rgb', 'clip_es'):
            raise ValueError(
                f"image_mode must be 'rgb' or 'clip_es', got {image_mode!r}")
        if unary_dtype not in ('float32', 'float16'):
            raise ValueError(
                f"unary_dtype must be 'float32' or 'float16', got {unary_dtype!r}"
            )
        self.iter_max = iter_max
        self.pos_xy_std, self.pos_w = pos_xy_std, pos_w
        self.bi_xy_std, self.bi_rgb_std, self.bi_w = bi_xy_std, bi_rgb_std, bi_w
        self.image_mode = image_mode
        self.mean_bgr = tuple(mean_bgr)
        self.wrap_uint8 = wrap_uint8
        self.unary_dtype = unary_dtype
        self.clip = clip
        self.confidence_threshold = confidence_threshold
        self.ignore_index = ignore_index
        if num_workers < 0:
            raise ValueError(f'num_workers must be >= 0, got {num_workers}')
        self.num_workers = num_workers

    def prepare_image(self, image_rgb: ArrayLike) -> np.ndarray:
        """The (H, W, 3) uint8 array for the bilateral term from an RGB image.

        Accepts (H, W, 3) or (3, H, W) uint8 RGB.
        """
        img = _np(image_rgb)
        if img.ndim != 3:
            raise ValueError(
                f'image must be (H, W, 3) or (3, H, W), got {img.shape}')
        if img.shape[-1] != 3 and img.shape[0] == 3:
            img = img.transpose(1, 2, 0)
        if img.dtype != np.uint8:
            raise ValueError(
                f'DenseCRF expects a uint8 RGB image, got {img.dtype}')
        if self.image_mode == 'clip_es':
            return mean_subtracted_uint8(img[..., ::-1], self.mean_bgr,
                                         self.wrap_uint8)
        return np.ascontiguousarray(img)

    def unary(self, prob: ArrayLike) -> np.ndarray:
        """``−log(clip(prob, clip, 1))`` as (C, H·W) float32."""
        p = _np(prob)
        p = p.astype(np.float16 if self.unary_dtype ==
                     'float16' else np.float32)
        p = np.clip(p, p.dtype.type(self.clip), p.dtype.type(1.0))
        return np.ascontiguousarray(
            (-np.log(p)).reshape(p.shape[0], -1).astype(np.float32))

    def inference_single(self,
                         image: np.ndarray,
                         prob: ArrayLike,
                         prepared: bool = False) -> np.ndarray:
        """Posterior Q (C, H, W) float32 for one image.

        Args:
            image: uint8 RGB (H, W, 3) / (3, H, W), or the already prepared
                bilateral image when ``prepared`` is True.
            prob: (C, H, W) class scores (not necessarily normalised).
        """
        c, h, w = _np(prob).shape
        img = np.ascontiguousarray(
            _np(image)) if prepared else self.prepare_image(image)
        if img.shape[:2] != (h, w):
            raise ValueError(
                f'image {img.shape[:2]} and prob {(h, w)} sizes differ')
        d = dcrf.DenseCRF2D(w, h, c)
        d.setUnaryEnergy(self.unary(prob))
        d.addPairwiseGaussian(sxy=self.pos_xy_std, compat=self.pos_w)
        d.addPairwiseBilateral(
            sxy=self.bi_xy_std,
            srgb=self.bi_rgb_std,
            rgbim=img,
            compat=self.bi_w)
        q = d.inference(self.iter_max)
        return np.array(q, dtype=np.float32).reshape(c, h, w)

    def __call__(self, images: Union[Tensor, Sequence[ArrayLike]],
                 probs: Union[Tensor, Sequence[ArrayLike]]) -> List[Tensor]:
        """Batch CRF: per image ``Q`` (C_i, H_i, W_i) as float32 tensors."""
        qs = self.inference_batch(images, probs)
        return [
            torch.from_numpy(q).to(
                p.device if isinstance(p, Tensor) else 'cpu')
            for q, p in zip(qs, probs)
        ]

    def inference_batch(self,
                        images: Union[Tensor, Sequence[ArrayLike]],
                        probs: Union[Tensor, Sequence[ArrayLike]],
                        prepared: bool = False) -> List[np.ndarray]:
        """:meth:`inference_single` of every image, in the worker pool when
        ``num_workers > 0`` (numpy inputs are sent, posteriors returned in
        order)."""
        return self.inference_batch_async(images, probs, prepared).get()

    def inference_batch_async(self,
                              images: Union[Tensor, Sequence[ArrayLike]],
                              probs: Union[Tensor, Sequence[ArrayLike]],
                              prepared: bool = False):
        """:meth:`inference_batch` without waiting: returns a handle whose
        ``get()`` gives the posteriors, so the caller can run the next
        model forward while the workers run the CRF (with ``num_workers ==
        0`` the work is done here and the handle is already complete)."""
        if len(images) != len(probs):
            raise ValueError(
                f'{len(images)} images but {len(probs)} probability maps')
        jobs = [(self, _np(img), _np(prob), prepared)
                for img, prob in zip(images, probs)]
        if self.num_workers == 0 or not jobs:
            return _Ready([_inference_job(j) for j in jobs])
        return crf_pool(self.num_workers).map_async(_inference_job, jobs)

    def predict(
        self,
        images: Union[Tensor, Sequence[ArrayLike]],
        probs: Union[Tensor, Sequence[ArrayLike]],
        keys: Optional[Sequence[Tensor]] = None
    ) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Labels with confidence-guided ignoring.

        Args:
            keys: per image the label of each channel (e.g. ``[0, c+1, …]``);
                channel indices when None.

        Returns:
            labels (``ignore_index`` where ``max Q < confidence_threshold``),
            labels without ignoring, confidences — lists of tensors.
        """
        qs = self(images, probs)
        labels, raw, confs = [], [], []
        for i, q in enumerate(qs):
            conf, idx = q.max(0)
            lab = idx if keys is None else torch.as_tensor(
                keys[i], device=q.device)[idx]
            raw.append(lab)
            if self.confidence_threshold is not None:
                lab = lab.masked_fill(conf < self.confidence_threshold,
                                      self.ignore_index)
            labels.append(lab)
            confs.append(conf)
        return labels, raw, confs

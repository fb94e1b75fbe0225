# Copyright (c) mmseg-excel contributors. All rights reserved.
import numpy as np
import pytest
import torch

from mmseg_excel.models.pseudo_labels import crf as crf_module
from mmseg_excel.models.pseudo_labels import (DenseCRF, clip_es_prob,
                                              mean_subtracted_uint8)


def test_mean_subtracted_wrap_and_saturate():
    img = np.array([[[100, 120, 130], [0, 255, 122]]], np.uint8)  # BGR
    mean = (104.008, 116.669, 122.675)
    wrapped = mean_subtracted_uint8(img, mean, wrap=True)
    # 100 − 104.008 = −4.008 → trunc −4 → 252; 120 − 116.669 = 3.33 → 3
    assert wrapped.tolist() == [[[252, 3, 7], [152, 138, 0]]]
    sat = mean_subtracted_uint8(img, mean, wrap=False)
    assert sat.tolist() == [[[0, 3, 7], [0, 138, 0]]]


def test_clip_es_prob_fp16():
    cams = np.array([[[0.2, 0.9]], [[0.5, 0.1]]], np.float16)
    prob = clip_es_prob(cams, 1)
    assert prob.dtype == np.float16
    assert np.array_equal(prob[0], (1 - np.max(cams, 0)).astype(np.float16))
    assert np.array_equal(prob[1:], cams)


def test_crf_smooths_and_ignores():
    rng = np.random.default_rng(0)
    h, w = 20, 24
    img = np.zeros((h, w, 3), np.uint8)
    img[:, w // 2:] = 200
    # noisy probabilities that favour the true split
    p1 = np.where(np.arange(w)[None] >= w // 2, 0.7, 0.3) + rng.normal(
        0, 0.25, (h, w))
    p1 = np.clip(p1, 0.01, 0.99).astype(np.float32)
    prob = np.stack([1 - p1, p1])
    noisy = prob.argmax(0)
    crf = DenseCRF(confidence_threshold=0.9)
    labels, raw, conf = crf.predict([img], [torch.from_numpy(prob)],
                                    [torch.tensor([0, 7])])
    truth = np.where(np.arange(w)[None] >= w // 2, 7, 0).repeat(h, 0)
    assert (raw[0].numpy() == truth).mean() > (np.where(noisy, 7,
                                                        0) == truth).mean()
    assert (raw[0].numpy() == truth).mean() > 0.95
    ign = labels[0].numpy() == 255
    assert np.array_equal(ign, conf[0].numpy() < 0.9)
    # the posterior is a distribution per pixel
    q = crf(torch.from_numpy(img)[None], torch.from_numpy(prob)[None])[0]
    assert torch.allclose(q.sum(0), torch.ones(h, w), atol=1e-4)
    # channel-first images are accepted
    q2 = crf([img.transpose(2, 0, 1)], [prob])[0]
    assert torch.equal(q, q2)


def test_unary_dtypes():
    prob = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32).reshape(2, 1, 2)
    u32 = DenseCRF().unary(prob)
    assert np.allclose(u32, -np.log(np.clip(prob, 1e-5, 1)).reshape(2, -1))
    u16 = DenseCRF(unary_dtype='float16').unary(prob)
    assert u16.dtype == np.float32
    assert np.array_equal(u16, (-np.log(
        np.clip(prob.astype(np.float16), np.float16(1e-5),
                np.float16(1)))).reshape(2, -1).astype(np.float32))


def test_bad_inputs(monkeypatch):
    with pytest.raises(ValueError, match='image_mode'):
        DenseCRF(image_mode='bgr')
    with pytest.raises(ValueError, match='uint8'):
        DenseCRF().prepare_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match='sizes differ'):
        DenseCRF().inference_single(
            np.zeros((4, 4, 3), np.uint8), np.ones((2, 5, 4)))
    with pytest.raises(ValueError, match='probability maps'):
        DenseCRF()([np.zeros((4, 4, 3), np.uint8)], [])
    monkeypatch.setattr(crf_module, 'dcrf', None)
    with pytest.raises(ImportError, match='pip install pydensecrf2'):
        DenseCRF()


def test_worker_pool_gives_the_same_posteriors():
    """``num_workers``: the batch goes to a process pool (pydensecrf holds
    the GIL); same posteriors, same order, as the loop on the thread."""
    import os
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 255, (5, 16, 20, 3), dtype=np.uint8)
    probs = torch.from_numpy(rng.random((5, 3, 16, 20)).astype(np.float32))
    serial = DenseCRF(bi_xy_std=20)(list(imgs), probs)
    pooled_crf = DenseCRF(bi_xy_std=20, num_workers=2)
    pooled = pooled_crf(list(imgs), probs)
    assert len(pooled) == 5
    for a, b in zip(serial, pooled):
        assert torch.equal(a, b)
    assert not torch.equal(serial[0], serial[1])  # order is checked
    pool = crf_module._POOLS[(os.getpid(), 2)]
    assert pool is crf_module.crf_pool(2)  # forked once, then kept
    with pytest.raises(ValueError, match='num_workers'):
        DenseCRF(num_workers=-1)


def test_seeding_boundary_loss_with_crf_workers():
    from mmseg_excel.models.losses.seed_boundary_loss import \
        SeedingBoundaryLoss
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 12, 12)
    mask = torch.randint(0, 4, (3, 1, 24, 24))
    imgs = np.random.default_rng(0).integers(0, 255, (3, 12, 12, 3),
                                             dtype=np.uint8)
    crf = dict(type='DenseCRF', bi_xy_std=20)
    a = SeedingBoundaryLoss(crf=crf)(logits, mask, imgs)
    b = SeedingBoundaryLoss(crf=dict(crf, num_workers=2))(logits, mask, imgs)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

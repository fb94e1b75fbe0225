# Copyright (c) mmseg-excel contributors. All rights reserved.
import cv2
import numpy as np
import pytest
import torch

from mmseg_excel.models.pseudo_labels import (AttentionAffinity,
                                              box_masks_from_maps,
                                              connected_components,
                                              sinkhorn_affinity,
                                              sinkhorn_normalise)


def cv2_box_mask(cam: np.ndarray, thr: float) -> np.ndarray:
    """Reference of EXCEL.md §5.2 / CLIP-ES scoremap2bbox with OpenCV."""
    h, w = cam.shape
    g = (cam * 255).astype(np.uint8)
    _, binary = cv2.threshold(g, int(thr * np.max(g)), 255, cv2.THRESH_BINARY)
    contours, _ = cv2.findContours(binary, cv2.RETR_TREE,
                                   cv2.CHAIN_APPROX_SIMPLE)
    mask = np.zeros((h, w), np.float32)
    for c in contours:
        x, y, bw, bh = cv2.boundingRect(c)
        mask[y:min(y + bh, h - 1), x:min(x + bw, w - 1)] = 1
    return mask


def _random_maps(rng, n):
    maps = []
    for i in range(n):
        h, w = rng.integers(1, 24, 2)
        m = rng.random((h, w)).astype(np.float32)
        if i % 3 == 1:  # smooth blobs
            m = cv2.GaussianBlur(m, (3, 3), 0)
        if i % 3 == 2:  # rings with holes and nested islands
            yy, xx = np.mgrid[:h, :w]
            r = np.hypot(yy - h / 2, xx - w / 2)
            m = ((np.sin(r * rng.uniform(0.5, 2)) + 1) / 2).astype(np.float32)
        m = (m - m.min()) / (m.max() - m.min() + 1e-7)
        maps.append(m.astype(np.float32))
    return maps


@pytest.mark.parametrize('thr', [0.4, 0.79, 0.88])
def test_box_masks_equal_opencv(thr):
    rng = np.random.default_rng(0)
    for m in _random_maps(rng, 150):
        ours = box_masks_from_maps(torch.from_numpy(m), thr).numpy()
        assert np.array_equal(ours, cv2_box_mask(m, thr)), m.shape


def test_box_masks_batched_equals_single_and_hole_case():
    # a ring with a hole and an island inside the hole (nested contours)
    m = np.zeros((9, 9), np.float32)
    m[1:8, 1:8] = 1
    m[3:6, 3:6] = 0
    m[4, 4] = 1
    assert np.array_equal(
        box_masks_from_maps(torch.from_numpy(m), 0.5).numpy(),
        cv2_box_mask(m, 0.5))
    torch.manual_seed(1)
    maps = torch.rand(3, 4, 7, 11)
    batched = box_masks_from_maps(maps, 0.6)
    for b in range(3):
        for k in range(4):
            assert torch.equal(batched[b, k],
                               box_masks_from_maps(maps[b, k], 0.6))
    # an all-zero map gives an empty mask (threshold 0, nothing > 0)
    assert box_masks_from_maps(torch.zeros(5, 5), 0.4).sum() == 0


def test_connected_components_equal_opencv():
    rng = np.random.default_rng(2)
    for _ in range(40):
        h, w = rng.integers(1, 20, 2)
        b = rng.random((h, w)) > 0.55
        lab = connected_components(torch.from_numpy(b)).numpy()
        n, ref = cv2.connectedComponents(b.astype(np.uint8), connectivity=8)
        assert ((lab > 0) == b).all()
        # same partition: a bijection between the labels
        pairs = set(zip(lab[b].tolist(), ref[b].tolist()))
        assert len(pairs) == n - 1 == len(set(lab[b].tolist()))


def test_sinkhorn_and_power():
    torch.manual_seed(0)
    a = torch.rand(2, 6, 6)
    d = sinkhorn_normalise(a, 3)
    assert torch.allclose(d.sum(-1), torch.ones(2, 6), atol=1e-6)
    t = sinkhorn_affinity(a, 3, 2)
    s = (d + d.transpose(1, 2)) / 2
    assert torch.allclose(t, s @ s, atol=1e-6)
    assert torch.allclose(t, t.transpose(1, 2), atol=1e-6)
    assert torch.allclose(sinkhorn_affinity(a, 3, 1), s)


def _reference_refine(attn, cams, hw, thr, num_layers, seg_attn=None):
    """Per-image, per-class loop of EXCEL.md §5.1-5.2 (official structure)."""
    b = cams.shape[0]
    out = torch.zeros(b, cams.shape[2], *hw)
    for i in range(b):
        a = attn[-num_layers:, i, 1:, 1:]
        if seg_attn is None:
            aff = a.mean(0)
        else:
            diff = torch.stack([(seg_attn[i] - x).sum() for x in a])
            keep = [float(d <= diff.mean()) for d in diff]
            aff = sum(k * x for k, x in zip(keep, a)) / (sum(keep) + 1e-5)
            aff = aff * seg_attn[i]
        for _ in range(3):
            aff = aff / aff.sum(0, keepdim=True)
            aff = aff / aff.sum(1, keepdim=True)
        aff = (aff + aff.t()) / 2
        aff = aff @ aff
        for c in range(cams.shape[2]):
            m = cams[i, :, c]
            box = torch.from_numpy(cv2_box_mask(m.view(*hw).numpy(), thr))
            out[i, c] = ((aff * box.view(1, -1)) @ m.view(-1, 1)).view(*hw)
    return out


@pytest.mark.parametrize('use_seg', [False, True])
def test_attention_affinity_matches_loop_reference(use_seg):
    torch.manual_seed(3)
    b, hw, k, layers = 2, (4, 5), 3, 7
    p = hw[0] * hw[1]
    attn = torch.rand(layers, b, p + 1, p + 1).softmax(-1)
    attn[-3:] *= 4  # scale mixture as in the surgery blocks
    cams = torch.rand(b, p, k)
    seg = torch.rand(b, p, p) if use_seg else None
    mod = AttentionAffinity(num_layers=5, box_threshold=0.5)
    refined, boxes, _ = mod(attn, cams, hw, seg)
    ref = _reference_refine(attn, cams, hw, 0.5, 5, seg)
    assert torch.allclose(refined, ref, rtol=1e-5, atol=1e-6)
    assert boxes.shape == (b, k, *hw)


def test_layer_selection_keeps_high_mass_layers():
    p = 4
    attn = torch.ones(3, 1, p + 1, p + 1)
    attn[0] *= 1.0
    attn[1] *= 2.0
    attn[2] *= 3.0
    seg = torch.full((1, p, p), 0.5)
    mod = AttentionAffinity(num_layers=3)
    # diff_l = Σ(0.5 − l) is ≤ its mean for layers 2 and 3 only
    mean = mod.mean_attention(attn, seg)
    assert torch.allclose(mean,
                          torch.full((1, p, p), 2.5 / (2 + 1e-5) * 2 * 0.5))


def test_bad_inputs():
    mod = AttentionAffinity(num_layers=6)
    with pytest.raises(ValueError, match='L >= 6'):
        mod.mean_attention(torch.rand(3, 1, 5, 5))
    with pytest.raises(ValueError, match='does not match P'):
        mod(torch.rand(6, 1, 5, 5), torch.rand(1, 4, 2), (3, 3))
    with pytest.raises(ValueError, match='seg_attn'):
        mod.mean_attention(torch.rand(6, 1, 5, 5), torch.rand(1, 3, 3))
    with pytest.raises(ValueError, match='num_layers'):
        AttentionAffinity(num_layers=0)

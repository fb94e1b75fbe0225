# Copyright (c) mmseg-excel contributors. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_excel.models.pseudo_labels import PAR, PixelAdaptiveRefinement


def _reference_par(imgs, masks, dilations, num_iter, w1=0.3, w2=0.01):
    """Straightforward (B, C, 48, H, W) formulation of EXCEL.md §5.4."""
    ker = torch.zeros(8, 1, 3, 3)
    for i, (y, x) in enumerate([(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0),
                                (2, 1), (2, 2)]):
        ker[i, 0, y, x] = 1

    def neigh(x):
        b, c, h, w = x.shape
        outs = []
        for d in dilations:
            xp = F.pad(
                x, [d] * 4, mode='replicate').reshape(b * c, 1, h + 2 * d,
                                                      w + 2 * d)
            outs.append(
                F.conv2d(xp, ker.to(x.dtype), dilation=d).view(b, c, 8, h, w))
        return torch.cat(outs, 2)

    pos = torch.cat([
        torch.tensor([
            math.sqrt(2), 1,
            math.sqrt(2), 1, 1,
            math.sqrt(2), 1,
            math.sqrt(2)
        ]) * d for d in dilations
    ]).view(1, 1, -1, 1, 1)
    n = neigh(imgs)
    a = (n - imgs.unsqueeze(2)).abs() / (n.std(2, keepdim=True) + 1e-8) / w1
    aff = (-(a**2)).mean(1, keepdim=True).softmax(2)
    paff = (-(pos / (pos.std(2, keepdim=True) + 1e-8) / w1)**2).softmax(2)
    aff = aff + w2 * paff
    for _ in range(num_iter):
        masks = (neigh(masks) * aff).sum(2)
    return masks


@pytest.mark.parametrize('propagation', ['auto', 'sparse', 'shift'])
def test_matches_reference_formulation(propagation):
    torch.manual_seed(0)
    imgs = torch.rand(2, 3, 23, 17)
    masks = torch.rand(2, 4, 23, 17)
    par = PAR((1, 2, 5), 4, propagation=propagation)
    ref = _reference_par(imgs, masks, (1, 2, 5), 4)
    assert torch.allclose(par(imgs, masks), ref, rtol=1e-5, atol=1e-6)
    # a second batch of another shape must not reuse the cached CSR index
    imgs2, masks2 = imgs[:1, :, :9, :11], masks[:1, :2, :9, :11]
    ref2 = _reference_par(imgs2, masks2, (1, 2, 5), 4)
    assert torch.allclose(par(imgs2, masks2), ref2, rtol=1e-5, atol=1e-6)


def test_dilation_larger_than_image():
    # replicate padding clamps every neighbour into a 3x4 image: repeated
    # columns in a row of the sparse matrix must add up like the shifts do
    torch.manual_seed(4)
    imgs = torch.rand(2, 3, 3, 4)
    masks = torch.rand(2, 3, 3, 4)
    ref = _reference_par(imgs, masks, (1, 6), 3)
    for propagation in ('sparse', 'shift'):
        out = PAR((1, 6), 3, propagation=propagation)(imgs, masks)
        assert torch.allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_dtype_and_autocast():
    torch.manual_seed(5)
    imgs = torch.rand(1, 3, 10, 12)
    masks = torch.rand(1, 2, 10, 12)
    par = PAR((1, 2), 3)
    ref = par(imgs, masks)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = par(imgs, masks.bfloat16())
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), ref, atol=1e-2)
    # float64 is computed in float64: 1e-8 of the float64 reference (both
    # share the float32 positional term), float32 compute would be ~6e-7 off
    ref64 = _reference_par(imgs.double(), masks.double(), (1, 2), 3)
    for propagation in ('sparse', 'shift'):
        par.propagation = propagation
        out64 = par(imgs.double(), masks.double())
        assert out64.dtype == torch.float64
        assert torch.allclose(out64, ref64, rtol=0, atol=1e-8)


def test_weights_sum_and_affine_invariance():
    torch.manual_seed(1)
    imgs = torch.rand(1, 3, 16, 16)
    par = PixelAdaptiveRefinement((1, 3), num_iter=3, w1=0.3, w2=0.05)
    aff = par.affinity(imgs)
    assert aff.shape == (1, 16, 16, 16)  # (B, H, W, 8 per dilation)
    assert torch.allclose(
        aff.sum(-1), torch.full((1, 16, 16), 1.05), atol=1e-6)
    masks = torch.rand(1, 2, 16, 16)
    scale = torch.tensor([2.0, 0.5, 3.0]).view(1, 3, 1, 1)
    shift = torch.tensor([-1.0, 4.0, 0.2]).view(1, 3, 1, 1)
    assert torch.allclose(
        par(imgs, masks),
        par(imgs * scale + shift, masks),
        rtol=1e-4,
        atol=1e-5)


def test_batch_and_channels_independent():
    torch.manual_seed(2)
    imgs = torch.rand(3, 3, 12, 14)
    masks = torch.rand(3, 5, 12, 14)
    par = PAR((1, 2), 5)
    out = par(imgs, masks)
    for b in range(3):
        assert torch.allclose(
            out[b:b + 1, 1:3],
            par(imgs[b:b + 1], masks[b:b + 1, 1:3]),
            atol=1e-6)


def test_resizes_image_to_mask():
    torch.manual_seed(3)
    imgs = torch.rand(1, 3, 20, 20)
    masks = torch.rand(1, 2, 10, 10)
    par = PAR((1, ), 2)
    small = F.interpolate(
        imgs, size=(10, 10), mode='bilinear', align_corners=True)
    assert torch.allclose(par(imgs, masks), par(small, masks))


def test_bad_inputs():
    with pytest.raises(ValueError, match='dilations'):
        PAR((0, 1), 2)
    with pytest.raises(ValueError, match='propagation'):
        PAR((1, ), 1, propagation='conv')
    with pytest.raises(ValueError, match='PAR expects'):
        PAR((1, ), 1)(torch.rand(2, 3, 4, 4), torch.rand(1, 2, 4, 4))

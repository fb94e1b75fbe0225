# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Balanced CE (§7.1) and affinity loss/labels (§7.2) vs direct formulas."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from mmseg_excel.models.losses import (BalancedCrossEntropyLoss,
                                       ExCELAffinityLoss,
                                       affinity_labels_from_mask,
                                       affinity_loss, balanced_cross_entropy)


def _labels(b, h, w, k, seed, ignore_frac=0.1):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (b, h, w), generator=g)
    y[torch.rand(b, h, w, generator=g) < ignore_frac] = 255
    return y


def test_balanced_ce_is_mean_of_bg_and_fg_means():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 6, 7, generator=g)
    y = _labels(2, 6, 7, 5, 1)
    ce = F.cross_entropy(logits, y, ignore_index=255, reduction='none')
    bg = ce[y == 0].mean()
    fg = ce[(y != 0) & (y != 255)].mean()
    got = balanced_cross_entropy(logits, y)
    assert got.item() == pytest.approx(((bg + fg) / 2).item(), rel=1e-5)
    # unlike plain CE: not the pixel mean
    assert abs(got - ce[y != 255].mean()) > 1e-3


def test_balanced_ce_only_background_and_weight():
    logits = torch.randn(1, 3, 4, 4)
    y = torch.zeros(1, 4, 4, dtype=torch.long)
    y[0, 0, 0] = 255
    ce = F.cross_entropy(logits, y, ignore_index=255, reduction='none')
    expect = ce[y == 0].mean() / 2  # fg term is 0 / (0 + eps) = 0
    loss = BalancedCrossEntropyLoss(loss_weight=2.0)
    assert loss.loss_name == 'loss_seg'
    assert loss(logits, y).item() == pytest.approx(2 * expect.item(), rel=1e-5)


def test_balanced_ce_bad_input():
    with pytest.raises(ValueError, match='do not match'):
        balanced_cross_entropy(torch.randn(1, 3, 4, 4), torch.zeros(1, 5, 4))
    with pytest.raises(ValueError, match='loss_name'):
        BalancedCrossEntropyLoss(loss_name='seg')


def _reference_aff_labels(labels, grid, radius):
    """Loop version of the official cams_to_affinity_label (2nd definition)
    with get_mask_by_radius, on a generic grid."""
    b = labels.shape[0]
    h, w = grid
    small = F.interpolate(
        labels[:, None].float(), size=grid, mode='nearest').reshape(b, -1)
    p = h * w
    out = torch.zeros(b, p, p, dtype=torch.long)
    mask = torch.zeros(p, p)
    for i in range(p):
        hi, wi = divmod(i, w)
        for i1 in range(max(0, hi - radius), min(h, hi + radius + 1)):
            for i2 in range(max(0, wi - radius), min(w, wi + radius + 1)):
                mask[i, i1 * w + i2] = 1
                mask[i1 * w + i2, i] = 1
    for n in range(b):
        for i, j in itertools.product(range(p), range(p)):
            out[n, i, j] = int(small[n, i] == small[n, j])
        out[n][mask == 0] = 255
        out[n][:, small[n] == 255] = 255
        out[n][small[n] == 255, :] = 255
    return out


@pytest.mark.parametrize('size, grid, radius', [((32, 48), (2, 3), 0),
                                                ((48, 80), (3, 5), 1),
                                                ((64, 64), (4, 4), 2)])
def test_affinity_labels_match_loop_reference(size, grid, radius):
    y = _labels(2, *size, 4, seed=3, ignore_frac=0.05)
    got = affinity_labels_from_mask(y, grid, radius)
    assert got.dtype == torch.uint8
    assert torch.equal(got.long(), _reference_aff_labels(y, grid, radius))


def test_affinity_labels_top_left_pixel_and_diagonal():
    # each 16x16 patch is 1 except its top-left pixel -> patch label 0
    y = torch.ones(1, 32, 32, dtype=torch.long)
    y[:, ::16, ::16] = 0
    z = affinity_labels_from_mask(y, (2, 2), radius=8)
    assert torch.equal(z, torch.ones(1, 4, 4, dtype=torch.uint8))
    y[:, 0, 0] = 2  # top-left of patch 0 differs from the others
    z = affinity_labels_from_mask(y, (2, 2), radius=8)
    assert z[0, 0, 0] == 1  # diagonal kept
    assert z[0, 0, 1] == 0 and z[0, 1, 0] == 0 and z[0, 1, 2] == 1
    y[:, 16, 16] = 255  # patch 3 ignored (top-left pixel 255)
    z = affinity_labels_from_mask(y, (2, 2), radius=8)
    assert (z[0, 3] == 255).all() and (z[0, :, 3] == 255).all()


def test_affinity_loss_formula():
    g = torch.Generator().manual_seed(5)
    pred = torch.rand(2, 6, 6, generator=g)
    lab = torch.randint(0, 3, (2, 6, 6), generator=g)
    lab[lab == 2] = 255
    pos, neg = lab == 1, lab == 0
    expect = 0.5 * (1 - pred[pos]).sum() / (pos.sum() + 1) + \
        0.5 * pred[neg].sum() / (neg.sum() + 1)
    assert affinity_loss(pred, lab).item() == pytest.approx(expect.item())
    loss = ExCELAffinityLoss(radius=1, loss_weight=0.1)
    assert loss.loss_name == 'loss_aff'
    assert loss(pred, lab).item() == pytest.approx(0.1 * expect.item())
    with pytest.raises(ValueError, match='differ in shape'):
        affinity_loss(pred, lab[:, :3])
    with pytest.raises(ValueError, match='radius'):
        ExCELAffinityLoss(radius=-1)
    with pytest.raises(ValueError, match=r'\(B, H, W\)'):
        affinity_labels_from_mask(lab[0, 0], (2, 2), 1)


def test_losses_registered():
    from mmseg.registry import MODELS
    assert isinstance(
        MODELS.build(dict(type='BalancedCrossEntropyLoss')),
        BalancedCrossEntropyLoss)
    aff = MODELS.build(dict(type='ExCELAffinityLoss', radius=3))
    assert isinstance(aff, ExCELAffinityLoss) and aff.radius == 3

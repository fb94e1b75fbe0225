# Copyright (c) mmseg-excel contributors. All rights reserved.
"""CLIP-ES confidence-guided loss against clip_es/cgl.pt (Eq. 8-9, 1e-5)."""
import pytest
import torch
import torch.nn.functional as F

from mmseg_excel.models.losses.cgl_loss import (ConfidenceGuidedLoss,
                                                cam_confidence,
                                                cams_to_pseudo_label,
                                                confidence_guided_loss,
                                                confidence_ignore_mask)


@pytest.fixture(scope='module')
def cgl(clip_es_parity_dir):
    return torch.load(clip_es_parity_dir / 'cgl.pt', weights_only=False)


@pytest.mark.parity
def test_cgl_matches_generator(cgl):
    conf = cam_confidence(cgl['cams'])
    assert (conf - cgl['conf']).abs().max().item() < 1e-5
    label = cams_to_pseudo_label(cgl['cams'], cgl['keys'])
    assert torch.equal(label, cgl['pseudo_label'].long())
    ce = F.cross_entropy(cgl['logits'], label, reduction='none')
    assert (ce - cgl['ce_map']).abs().max().item() < 1e-5
    assert len(cgl['by_mu']) >= 1 and cgl['mu_official'] in cgl['by_mu']
    for mu, ref in cgl['by_mu'].items():
        keep = conf >= mu
        assert torch.equal(keep, ref['keep'])
        lmap = confidence_guided_loss(cgl['logits'], label, conf, mu, 'none')
        assert (lmap - ref['loss_map']).abs().max().item() < 1e-5
        for red, key in (('kept', 'loss_mean_kept_pixels'),
                         ('all', 'loss_mean_all_pixels')):
            mod = ConfidenceGuidedLoss(mu=mu, reduction=red, loss_weight=2.0)
            got = mod(cgl['logits'], label, cams=cgl['cams'])
            assert abs(got.item() / 2.0 -
                       ref[key]) < 1e-5 * max(1.0, abs(ref[key])), (mu, red)
        masked = confidence_ignore_mask(label, conf, mu)
        assert torch.equal(masked, ref['pseudo_mask_ignored'].long())
        # the code path: plain CE with ignore 255 on the masked label
        plain = ConfidenceGuidedLoss(mu=mu)(cgl['logits'], masked)
        assert abs(plain.item() - ref['ce_ignore_index_255']) < 1e-5


def test_cgl_bad_input():
    with pytest.raises(ValueError, match='reduction'):
        ConfidenceGuidedLoss(reduction='mean')
    with pytest.raises(ValueError, match='mu'):
        ConfidenceGuidedLoss(mu=1.5)
    with pytest.raises(ValueError, match='cams must be'):
        cam_confidence(torch.rand(3, 4, 5))
    logits = torch.randn(1, 3, 4, 5)
    with pytest.raises(ValueError, match='confidence'):
        confidence_guided_loss(logits, torch.zeros(1, 4, 5, dtype=torch.long),
                               torch.rand(1, 4, 4))


def test_cgl_closed_form():
    """All pixels kept: mean CE; none kept: 0; ignored labels never count."""
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5)
    label = torch.randint(0, 4, (2, 3, 5))
    ce = F.cross_entropy(logits, label)
    assert torch.allclose(
        confidence_guided_loss(logits, label, torch.ones(2, 3, 5)), ce)
    assert confidence_guided_loss(logits, label, torch.zeros(2, 3,
                                                             5)).item() == 0.0
    label[0, 0, 0] = 255
    got = confidence_guided_loss(logits, label, torch.ones(2, 3, 5), 0.5,
                                 'all')
    want = F.cross_entropy(
        logits, label, ignore_index=255, reduction='sum') / label.numel()
    assert torch.allclose(got, want)
    assert ConfidenceGuidedLoss().loss_name == 'loss_cgl'

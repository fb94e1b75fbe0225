# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCEL surgery maps, CAA refinement, PAR and pseudo labels vs the official code.

Fixtures: encoder.pt, text.pt, step_before_lvc.pt, step_after_lvc.pt,
inputs.pt, par.pt (README: 1e-5 relative, pseudo labels ≥ 99.9 % equal).
Every stage runs on ``test_device`` (CPU unless ``MMSEG_EXCEL_TEST_DEVICE``
names an accelerator).
"""
import pytest
import torch

from mmseg_excel.models.pseudo_labels import (PAR, ExCELPseudoLabeler,
                                              denormalize_uint8,
                                              patch_text_maps)

pytestmark = pytest.mark.parity

# official denormalize_img (ImageNet statistics on RGB 0-255, EXCEL.md §1.2)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
CAA_THRESHOLD = 0.79  # README: "Caa threshold 0.79"
PAR_DILATIONS = (1, 2, 4, 8, 12, 24)
PAR_ITERS = 20


def _load(p, device='cpu'):
    return torch.load(p, weights_only=False, map_location=device)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


def _train_images(inputs):
    """Normalised inputs → uint8 (truncation) → /255, as training passes them."""
    return denormalize_uint8(inputs['inputs'], IMAGENET_MEAN, IMAGENET_STD)


def test_patch_text_maps(parity_dir, test_device):
    enc = _load(parity_dir / 'encoder.pt', test_device)
    text = _load(parity_dir / 'text.pt', test_device)
    num_fg = enc['attr_maps_raw'].shape[-1]
    maps_all, cams = patch_text_maps(enc['image_features'],
                                     text['text_attr'].t(), num_fg)
    assert _rel(maps_all, enc['attr_maps']) < 1e-5
    assert _rel(cams, enc['attr_maps_raw']) < 1e-5


def test_par(parity_dir, test_device):
    d = _load(parity_dir / 'par.pt', test_device)
    par = PAR(d['dilations'], d['num_iter']).to(test_device)
    assert _rel(par(d['images'], d['masks']), d['out']) < 1e-5


@pytest.mark.parametrize('step', ['step_before_lvc.pt', 'step_after_lvc.pt'])
def test_refine_and_pseudo_labels(parity_dir, step, test_device):
    enc = _load(parity_dir / 'encoder.pt', test_device)
    inputs = _load(parity_dir / 'inputs.pt', test_device)
    s = _load(parity_dir / step, test_device)
    # after the switch refinement uses the decoder affinity (seg_attn)
    seg_attn = s['forward']['attn_pred'] if s['iteration'] > 0 else None
    gen = ExCELPseudoLabeler(
        affinity=dict(num_layers=6, box_threshold=CAA_THRESHOLD),
        par=dict(dilations=PAR_DILATIONS, num_iter=PAR_ITERS)).to(test_device)
    images = _train_images(inputs)
    out = gen(
        s['attr_maps_used'],
        enc['attn_weights'],
        inputs['cls_labels'],
        images,
        seg_attn=seg_attn)
    for i, ref in enumerate(s['refined']):
        k = len(ref['cls'])
        assert torch.equal(out['class_idx'][i, :k], ref['cls'])
        assert int(out['valid'][i].sum()) == k
        assert _rel(out['refined'][i, :k], torch.stack(ref['maps'])) < 1e-5
        # the per-class min–max amplifies the 1e-7 matmul rounding of maps
        # whose range is small compared with their values: 1e-4 absolute
        cwb = s['cams_with_bkg'][i]
        assert cwb.shape[0] == 1 + k
        assert (out['cams_with_bkg'][i, :1 + k] - cwb).abs().max() < 1e-4
    eq = (out['pseudo_labels'] == s['pseudo_labels'].long()).float().mean()
    assert eq >= 0.999
    assert out['pseudo_labels'].shape == s['pseudo_labels'].shape

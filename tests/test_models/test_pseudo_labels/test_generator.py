# Copyright (c) mmseg-excel contributors. All rights reserved.
import pytest
import torch

from mmseg_excel.models.pseudo_labels import (ExCELPseudoLabeler, infer_grid,
                                              present_classes)


def _inputs(seed=0, b=3, k_fg=6, hw=(4, 6), img=(32, 48), layers=4):
    g = torch.Generator().manual_seed(seed)
    p = hw[0] * hw[1]
    cams = torch.rand(b, p, k_fg, generator=g)
    attn = torch.rand(layers, b, p + 1, p + 1, generator=g).softmax(-1)
    images = torch.rand(b, 3, *img, generator=g)
    return cams, attn, images


def _gen():
    return ExCELPseudoLabeler(
        affinity=dict(num_layers=3, box_threshold=0.6),
        par=dict(dilations=(1, 2), num_iter=3))


def test_present_classes_layout():
    labels = torch.tensor([[0, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]])
    idx, valid = present_classes(labels)
    assert idx.tolist() == [[1, 3, 0], [0, 0, 0], [0, 1, 2]]
    assert valid.tolist() == [[True, True, False], [False] * 3, [True] * 3]
    idx, valid = present_classes(torch.zeros(2, 5))
    assert idx.shape == (2, 1) and not valid.any()


def test_batched_equals_single_images_and_labels_are_present_classes():
    cams, attn, images = _inputs()
    labels = torch.tensor([[0, 1, 0, 0, 1, 1], [0, 0, 1, 0, 0, 0],
                           [1, 0, 0, 0, 0, 1]])
    gen = _gen()
    out = gen(cams, attn, labels, images)
    pl = out['pseudo_labels']
    assert pl.shape == (3, 32, 48) and pl.dtype == torch.long
    for b in range(3):
        allowed = {0} | {c + 1 for c in labels[b].nonzero().flatten().tolist()}
        assert set(pl[b].unique().tolist()) <= allowed
        single = gen(cams[b:b + 1], attn[:, b:b + 1], labels[b:b + 1],
                     images[b:b + 1])
        assert torch.equal(single['pseudo_labels'][0], pl[b])
        k = int(labels[b].sum())
        # matmul rounding (1e-7) is amplified by the min-max of the nearly
        # flat maps that uniform random attention produces
        assert torch.allclose(
            single['refined'][0], out['refined'][b, :k], rtol=1e-5)
        assert torch.allclose(
            single['cams_with_bkg'][0],
            out['cams_with_bkg'][b, :1 + k],
            atol=1e-4)
        assert (out['cams_with_bkg'][b, 1 + k:] == 0).all()
    assert 255 not in pl  # no ignore pixels (quirk 12)


def test_closed_form_of_background_and_argmax_without_par():
    cams, attn, images = _inputs(1, b=1)
    labels = torch.tensor([[0, 0, 1, 0, 1, 0]])
    gen = ExCELPseudoLabeler(
        affinity=dict(num_layers=2, box_threshold=0.3),
        par=dict(dilations=(1, ), num_iter=0),
        bg_power=2.0)
    out = gen(cams, attn, labels, images)
    x = out['cams_with_bkg'][0]
    fg = x[1:]
    assert torch.allclose(x[0], (1 - fg.max(0).values)**2)
    key = torch.tensor([0, 3, 5])
    # with num_iter=0 PAR is the identity
    assert torch.equal(out['pseudo_labels'][0], key[x.argmax(0)])
    # each refined class map was min-max normalised before upsampling
    assert fg.amax((1, 2)).max() <= 1 + 1e-6


def test_image_without_labels_is_background():
    cams, attn, images = _inputs(2, b=2)
    labels = torch.zeros(2, 6)
    labels[1, 3] = 1
    out = _gen()(cams, attn, labels, images)
    assert (out['pseudo_labels'][0] == 0).all()
    assert (out['cams_with_bkg'][0, 0] == 1).all()
    out = _gen()(cams, attn, torch.zeros(2, 6), images)
    assert (out['pseudo_labels'] == 0).all()


def test_seg_attn_changes_refinement():
    cams, attn, images = _inputs(3, b=2)
    labels = torch.zeros(2, 6)
    labels[:, 2] = 1
    p = cams.shape[1]
    seg = torch.rand(2, p, p)
    gen = _gen()
    a = gen(cams, attn, labels, images)['refined']
    b = gen(cams, attn, labels, images, seg_attn=seg)['refined']
    assert not torch.allclose(a, b)


def test_grid_and_bad_inputs():
    assert infer_grid(24, (32, 48)) == (4, 6)
    assert infer_grid(400, (320, 320)) == (20, 20)
    with pytest.raises(ValueError, match='pass grid_hw'):
        infer_grid(7, (32, 48))
    cams, attn, images = _inputs()
    with pytest.raises(ValueError, match='cls_labels'):
        _gen()(cams, attn, torch.zeros(3, 5), images)
    with pytest.raises(ValueError, match='images'):
        _gen()(cams, attn, torch.zeros(3, 6), images[:2])


def test_registry_build():
    from mmseg.registry import MODELS

    import mmseg_excel  # noqa: F401
    gen = MODELS.build(
        dict(
            type='ExCELPseudoLabeler',
            affinity=dict(num_layers=6, box_threshold=0.79),
            par=dict(dilations=(1, 2, 4, 8, 12, 24), num_iter=20)))
    assert gen.affinity.num_layers == 6 and gen.par.num_iter == 20
    par = MODELS.build(
        dict(type='PixelAdaptiveRefinement', dilations=(1, 2), num_iter=3))
    assert par.dilations == [1, 2]


def test_denormalize_uint8_truncates():
    from mmseg_excel.models.pseudo_labels import denormalize_uint8
    mean, std = (10.0, 20.0), (2.0, 4.0)
    x = torch.tensor([[[[0.9999]], [[-0.5]]]])  # 11.9998 → 11; 18 → 18
    out = denormalize_uint8(x, mean, std)
    assert torch.allclose(out.flatten(), torch.tensor([11 / 255, 18 / 255]))
    with pytest.raises(ValueError, match='mean/std need 2'):
        denormalize_uint8(x, (1.0, ), (1.0, ))

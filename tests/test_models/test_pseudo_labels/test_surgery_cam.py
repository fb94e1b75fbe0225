# Copyright (c) mmseg-excel contributors. All rights reserved.
import pytest
import torch

from mmseg_excel.models.pseudo_labels import (SurgeryPatchTextMap,
                                              patch_text_maps)


def _explicit(feats, text, num_fg, temp=2.0):
    """The official 4-D formulation (B, N, T, E) of EXCEL.md §3."""
    prob = (temp * feats[:, :1, :] @ text.t()).softmax(-1)
    w = prob / prob.mean(-1, keepdim=True)
    f = feats.unsqueeze(2) * text[None, None]
    f = f * w.reshape(w.shape[0], 1, -1, 1)
    f = f - f.mean(2, keepdim=True)
    s = f.sum(-1)
    s = (s - s.amin(1, keepdim=True)) / (
        s.amax(1, keepdim=True) - s.amin(1, keepdim=True))
    return s, s[:, 1:, :num_fg]


def test_closed_form_equals_explicit():
    torch.manual_seed(0)
    feats = torch.nn.functional.normalize(torch.randn(3, 10, 16), dim=1)
    text = torch.nn.functional.normalize(torch.randn(7, 16), dim=-1)
    maps, cams = patch_text_maps(feats, text, 4)
    ref_maps, ref_cams = _explicit(feats, text, 4)
    assert torch.allclose(maps, ref_maps, atol=1e-5)
    assert torch.allclose(cams, ref_cams, atol=1e-5)
    assert cams.shape == (3, 9, 4)
    # the class token takes part in the min-max: every (b, t) spans [0, 1]
    assert torch.allclose(maps.amax(1), torch.ones(3, 7))
    assert torch.allclose(maps.amin(1), torch.zeros(3, 7))


def test_temperature_and_wrapper_layout():
    torch.manual_seed(1)
    feats = torch.randn(2, 5, 8)
    text = torch.randn(6, 8)
    _, c2 = patch_text_maps(feats, text, 3, temperature=2.0)
    _, c5 = patch_text_maps(feats, text, 3, temperature=5.0)
    assert not torch.allclose(c2, c5)
    mod = SurgeryPatchTextMap(num_fg=3, temperature=5.0, text_layout='ET')
    assert torch.equal(mod(feats, text.t())[1], c5)


def test_bad_inputs():
    with pytest.raises(ValueError, match='embedding sizes differ'):
        patch_text_maps(torch.randn(1, 4, 8), torch.randn(8, 6), 2)
    with pytest.raises(ValueError, match='num_fg'):
        patch_text_maps(torch.randn(1, 4, 8), torch.randn(3, 8), 4)
    with pytest.raises(ValueError, match=r'\(B, N, E\)'):
        patch_text_maps(torch.randn(4, 8), torch.randn(3, 8), 2)
    with pytest.raises(ValueError, match='text_layout'):
        SurgeryPatchTextMap(2, text_layout='XY')


def test_registry():
    from mmseg.registry import MODELS

    import mmseg_excel  # noqa: F401
    mod = MODELS.build(dict(type='SurgeryPatchTextMap', num_fg=2))
    assert isinstance(mod, SurgeryPatchTextMap)

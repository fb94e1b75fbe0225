# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Unit tests: weight resolver, frozen CLIP ViT backbone, SVC, LVC."""
import pytest
import torch
import torch.nn.functional as F

from mmseg_excel.models.backbones import (CLIPViTBackbone,
                                          interpolate_pos_embed)
from mmseg_excel.models.necks import add_lvc_shift, lvc_shift
from mmseg_excel.utils.clip_weights import is_torchscript_archive, load_clip


@pytest.fixture(scope='module')
def backbone(tiny_clip_files):
    return CLIPViTBackbone(
        model_name=tiny_clip_files['name'],
        pretrained=tiny_clip_files['open_clip'],
        svc=dict(type='SVC', num_blocks=2))


def test_resolver_formats(tiny_clip_files):
    import open_clip
    ref = torch.load(tiny_clip_files['open_clip'], weights_only=True)
    m1 = load_clip(tiny_clip_files['name'], tiny_clip_files['open_clip'])
    m2 = load_clip(tiny_clip_files['name'], tiny_clip_files['openai'])
    m3 = load_clip(None, tiny_clip_files['openai'])  # shapes -> architecture
    for m in (m1, m2, m3):
        sd = m.state_dict()
        assert not m.training
        assert all(v.dtype == torch.float32 for v in sd.values())
        torch.testing.assert_close(sd['visual.conv1.weight'],
                                   ref['visual.conv1.weight'],
                                   atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(m1.state_dict()['visual.proj'],
                               ref['visual.proj'])
    # fp16 file: values are the fp16-rounded weights, held in fp32
    torch.testing.assert_close(m2.state_dict()['visual.proj'],
                               ref['visual.proj'].half().float())
    assert isinstance(m3, open_clip.CLIP)
    # OpenAI-like (fp16) files get QuickGELU even with an open_clip name
    from open_clip.transformer import QuickGELU
    for m in (m2, m3):
        assert isinstance(m.visual.transformer.resblocks[0].mlp.gelu,
                          QuickGELU)
    img = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(m1.visual(img), m2.visual(img),
                                   atol=5e-3, rtol=5e-3)


def test_resolver_torchscript(tiny_clip_files, tmp_path):
    """A traced full CLIP saved as a TorchScript archive (as OpenAI's
    ``ViT-B-16.pt``) goes through ``open_clip.load_openai_model``."""
    model = load_clip(tiny_clip_files['name'], tiny_clip_files['open_clip'])
    # OpenAI's CLIP keeps its text mask as a plain attribute, not a buffer
    mask = model._buffers.pop('attn_mask')
    object.__setattr__(model, 'attn_mask', mask)
    traced = torch.jit.trace_module(
        model, dict(encode_image=(torch.zeros(1, 3, 64, 64), )),
        check_trace=False)
    path = str(tmp_path / 'weights.pt')  # a torch.save file has this name too
    traced.save(path)
    assert is_torchscript_archive(path)
    assert not is_torchscript_archive(tiny_clip_files['open_clip'])
    loaded = load_clip(None, path)
    assert not loaded.training
    sd = loaded.state_dict()
    for key, value in model.state_dict().items():
        got = sd[key]
        assert got.dtype == torch.float32, key
        # open_clip casts the matrices through fp16 (OpenAI archives hold
        # fp16 values), embeddings stay as stored
        assert (torch.equal(got, value)
                or torch.equal(got, value.half().float())), key
    img = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert loaded.visual(img).shape == model.visual(img).shape


def test_resolver_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing_clip.pt'):
        load_clip('ViT-B-16', str(tmp_path / 'missing_clip.pt'))
    bad = tmp_path / 'bad.pt'
    torch.save({'a': torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match='not a CLIP ViT state dict'):
        load_clip(None, str(bad))
    with pytest.raises(RuntimeError, match=str(tmp_path)):
        load_clip('no-such-arch', 'openai', cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match='precision'):
        load_clip('ViT-B-16', None, precision='fp8')


def test_pos_embed_identity_and_closed_form():
    torch.manual_seed(0)
    pos = torch.randn(1 + 3 * 4, 5)
    assert torch.equal(interpolate_pos_embed(pos, (3, 4), (3, 4)), pos)
    out = interpolate_pos_embed(pos, (3, 4), (6, 8))
    assert torch.equal(out[0], pos[0])
    # 2x upsampling, align_corners=False: output pixel (0,0) = input (0,0),
    # output (1,1) = 0.75/0.25 mix of input rows/cols 0 and 1
    g = pos[1:].reshape(3, 4, 5)
    grid = out[1:].reshape(6, 8, 5)
    torch.testing.assert_close(grid[0, 0], g[0, 0])
    expect = (0.75 * 0.75 * g[0, 0] + 0.75 * 0.25 * g[0, 1] +
              0.25 * 0.75 * g[1, 0] + 0.25 * 0.25 * g[1, 1])
    torch.testing.assert_close(grid[1, 1], expect)


def test_forward_non_square_and_frozen(backbone):
    img = torch.randn(2, 3, 64, 96)
    pos_before = backbone.positional_embedding.clone()
    backbone.train()
    assert not backbone.training
    assert all(not p.requires_grad for p in backbone.parameters())
    f = backbone(img.requires_grad_(True))
    assert f.hw == (4, 6)
    N, L = 1 + 24, backbone.num_layers
    assert f.image_features.shape == (2, N, 32)
    assert f.attn_weights.shape == (L, 2, N, N)
    assert f.all_feats.shape == (L, 2, N, 64)
    assert not f.image_features.requires_grad
    assert torch.equal(backbone.positional_embedding, pos_before)
    # token-axis L2 norm (quirk 4)
    torch.testing.assert_close(f.image_features.norm(dim=1),
                               torch.ones(2, 32))
    rows = f.attn_weights.sum(-1)
    torch.testing.assert_close(rows[0], torch.ones(2, N))  # head mean
    torch.testing.assert_close(rows[1:],
                               torch.full((L - 1, 2, N), 2.))  # head sum


def test_svc_none_is_plain_clip(tiny_clip_files):
    bb = CLIPViTBackbone(
        model_name=tiny_clip_files['name'],
        pretrained=tiny_clip_files['open_clip'],
        svc=None,
        feature_norm='none')
    clip = load_clip(tiny_clip_files['name'], tiny_clip_files['open_clip'])
    img = torch.randn(2, 3, 64, 64)
    f = bb(img)
    with torch.no_grad():
        ref = clip.visual(img)  # pooled class token after ln_post·proj
    torch.testing.assert_close(f.image_features[:, 0], ref, atol=1e-5,
                               rtol=1e-5)
    assert f.cache is None
    with pytest.raises(ValueError, match='SVC cache'):
        bb.forward_lvc(f, torch.randn(2, 8, 4, 4))


def test_clean_layer_feats_and_aliasing(tiny_clip_files, backbone):
    clean = CLIPViTBackbone(
        model_name=tiny_clip_files['name'],
        pretrained=tiny_clip_files['open_clip'],
        svc=dict(type='SVC', num_blocks=2),
        clean_layer_feats=True)
    img = torch.randn(1, 3, 64, 64)
    a, c = backbone(img), clean(img)
    torch.testing.assert_close(a.image_features, c.image_features)
    torch.testing.assert_close(a.all_feats[-1], c.all_feats[-1])
    # entry before the surgery holds the final new path (quirk 6)
    assert not torch.allclose(a.all_feats[0], c.all_feats[0])


def test_lvc_shift_and_reforward(backbone):
    torch.manual_seed(1)
    ex = torch.randn(2, 8, 4, 4)
    ex[0] += 2.  # image 0: high cosines, image 1: low ones
    r = lvc_shift(ex)
    u = F.normalize(ex.flatten(2), dim=1)
    g = u.transpose(1, 2) @ u
    g = (g - g.mean()) * 3.0
    ref = g.masked_fill(g < 0, float('-inf')).softmax(-1)
    torch.testing.assert_close(r, ref)
    r2 = lvc_shift(ex, per_image_mean=True)
    assert not torch.allclose(r, r2)
    s = torch.rand(2, 17, 17)
    out = add_lvc_shift(s, r, 2)
    torch.testing.assert_close(out[:, 1:, 1:], s[:, 1:, 1:] + 2 * r)
    torch.testing.assert_close(out[:, 0], s[:, 0])
    img = torch.randn(2, 3, 64, 64)
    f = backbone(img)
    lvc = backbone.forward_lvc(f, ex)
    assert not torch.allclose(lvc.image_features, f.image_features)
    assert torch.equal(lvc.attn_weights, f.attn_weights)
    with pytest.raises(ValueError, match='patch grid'):
        backbone.forward_lvc(f, torch.randn(2, 8, 3, 4))


def test_state_dict_without_clip(backbone, tiny_clip_files):
    assert len(backbone.state_dict()) == 0
    bb = CLIPViTBackbone(
        model_name=tiny_clip_files['name'],
        pretrained=tiny_clip_files['open_clip'],
        svc=dict(type='SVC', num_blocks=2),
        save_clip_weights=True)
    assert 'conv1.weight' in bb.state_dict()
    before = backbone.conv1.weight.clone()
    res = backbone.load_state_dict({}, strict=True)
    assert not res.missing_keys
    assert torch.equal(backbone.conv1.weight, before)
    # mmengine's loader and init_weights leave CLIP untouched
    from mmengine.runner.checkpoint import load_state_dict
    parent = torch.nn.Module()
    parent.backbone = backbone
    parent.head = torch.nn.Linear(2, 2)
    sd = parent.state_dict()
    assert set(sd) == {'head.weight', 'head.bias'}
    load_state_dict(parent, sd, strict=True)
    backbone.init_weights()
    assert torch.equal(backbone.conv1.weight, before)
    # a checkpoint WITH CLIP keys (save_clip_weights=True) loads its values
    other = {k: v + 1 for k, v in bb.state_dict().items()}
    bb.load_state_dict(other, strict=True)
    assert torch.equal(bb.conv1.weight, other['conv1.weight'])


def test_bad_inputs(backbone):
    with pytest.raises(ValueError, match='not divisible by the patch size'):
        backbone(torch.randn(1, 3, 64, 70))
    with pytest.raises(ValueError, match='smaller than one'):
        backbone(torch.randn(1, 3, 8, 64))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        backbone(torch.randn(3, 64, 64))
    with pytest.raises(ValueError, match='num_blocks'):
        CLIPViTBackbone(model_name='mmseg-excel-tiny-vit', pretrained=None,
                        svc=dict(type='SVC', num_blocks=9))


@pytest.mark.parametrize('keep', [0, 1, 2, 3])
def test_attn_layers_keeps_only_the_read_maps(tiny_clip_files, backbone,
                                              keep):
    """``attn_layers=k``: the last k attention maps, equal to those of the
    full forward; the other blocks run fused attention (same features)."""
    bb = CLIPViTBackbone(
        model_name=tiny_clip_files['name'],
        pretrained=tiny_clip_files['open_clip'],
        svc=dict(type='SVC', num_blocks=2), attn_layers=keep)
    img = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    full, part = backbone(img), bb(img)
    assert full.attn_weights.shape[0] == len(backbone.resblocks)
    assert part.attn_weights.shape == (keep, *full.attn_weights.shape[1:])
    torch.testing.assert_close(part.attn_weights,
                               full.attn_weights[len(full.attn_weights) -
                                                 keep:],
                               atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(part.image_features, full.image_features,
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(part.all_feats, full.all_feats, atol=1e-5,
                               rtol=1e-5)


def test_excel_computes_attention_only_for_caa(tiny_clip_files):
    from mmseg.registry import MODELS
    from mmengine.registry import init_default_scope
    import mmseg_excel  # noqa: F401
    init_default_scope('mmseg')
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from test_bad_inputs import _excel_cfg
    model = MODELS.build(_excel_cfg(tiny_clip_files))
    num = model.pseudo_labeler.affinity.num_layers
    assert model.backbone.attn_layers == num
    feats = model.extract_feat(torch.randn(1, 3, 64, 64))
    assert feats.attn_weights.shape[0] == num

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""SoftmaxGradCAM (CLIP-ES §3) on the tiny open_clip ViT.

The reference is an independent per-class loop: open_clip's own block
modules, a forward hook that makes the last block's ``ln_1`` output a leaf,
one ``autograd.grad`` per class.
"""
import open_clip
import pytest
import torch
import torch.nn.functional as F

from mmseg_excel.models.pseudo_labels.gradcam import (SoftmaxGradCAM,
                                                      minmax_twice,
                                                      resize_clip_pos_embed)


@pytest.fixture(scope='module')
def tiny_visual(tiny_clip_name):
    torch.manual_seed(0)
    model = open_clip.create_model(tiny_clip_name, pretrained=None)
    return model.eval().requires_grad_(False).visual


def _reference(visual, image, text, k, scale):
    """Per-class loop with open_clip's modules (image at the native size)."""
    x = visual.conv1(image[None])
    b, d, h, w = x.shape
    x = x.reshape(b, d, -1).transpose(1, 2)
    x = torch.cat([visual.class_embedding.view(1, 1, d), x], 1)
    x = visual.ln_pre(x + visual.positional_embedding)
    blocks = visual.transformer.resblocks
    with torch.no_grad():
        for blk in blocks[:-1]:
            x = blk(x)
    store = {}

    def hook(mod, inp, out):
        out = out.detach().requires_grad_(True)
        store['a'] = out
        return out

    handle = blocks[-1].ln_1.register_forward_hook(hook)
    cams, probs = [], []
    try:
        t = F.normalize(text, dim=-1)
        for j in range(k):
            y = visual.ln_post(blocks[-1](x))
            u = F.normalize(y[:, 1:].mean(1) @ visual.proj, dim=-1)
            p = (scale * u @ t.t()).softmax(-1)[0]
            (g, ) = torch.autograd.grad(p[j], store['a'])
            a = store['a'].detach()[0, 1:]  # (P, D)
            wts = g[0, 1:].mean(0)
            cam = F.relu(a @ wts).reshape(h, w)
            for _ in range(2):
                cam = cam - cam.min()
                cam = cam / (cam.max() + 1e-7)
            cams.append(cam)
            probs.append(p.detach())
    finally:
        handle.remove()
    return torch.stack(cams), torch.stack(probs)


@pytest.mark.parametrize('mode', ['vmap', 'replicate'])
def test_matches_per_class_loop(tiny_visual, mode):
    v = tiny_visual
    torch.manual_seed(1)
    size = v.image_size if isinstance(v.image_size, tuple) else (v.image_size,
                                                                 v.image_size)
    images = torch.randn(2, 3, *size)
    e = v.proj.shape[1]
    m = 4
    ks = [3, 1]
    texts = [torch.randn(k + m, e) for k in ks]
    cam = SoftmaxGradCAM(
        num_attn_layers=2, pos_embed_fp16_round=False, batch_mode=mode)
    out = cam(v, images, texts, ks, 7.5)
    for i in range(2):
        ref_cams, ref_probs = _reference(v, images[i], texts[i], ks[i], 7.5)
        assert out[i]['cams'].shape == ref_cams.shape
        assert torch.allclose(out[i]['cams'], ref_cams, atol=1e-5)
        assert torch.allclose(out[i]['probs'], ref_probs, atol=1e-6)
        assert out[i]['cams'].amax((1, 2)).min() > 0.99
        p = ref_cams.shape[-1] * ref_cams.shape[-2]
        assert out[i]['attn_mean'].shape == (p, p)
        # head-averaged attention rows are distributions
        assert torch.allclose(
            out[i]['attn_last'].sum(-1), torch.ones(2, p + 1), atol=1e-5)
        assert torch.allclose(out[i]['attn_mean'],
                              out[i]['attn_last'][:, 1:, 1:].mean(0))


@pytest.mark.parametrize('mode', ['vmap', 'replicate'])
def test_mixed_sizes_grouped(tiny_visual, mode):
    """Images of different sizes are grouped; results equal single calls."""
    v = tiny_visual
    torch.manual_seed(2)
    e = v.proj.shape[1]
    imgs = [
        torch.randn(3, 48, 80),
        torch.randn(3, 64, 32),
        torch.randn(3, 48, 80)
    ]
    ks = [2, 1, 3]
    texts = [torch.randn(k + 3, e) for k in ks]
    cam = SoftmaxGradCAM(num_attn_layers=3, batch_mode=mode)
    out = cam(v, imgs, texts, ks, 10.0, return_intermediates=True)
    for i, im in enumerate(imgs):
        single = cam(v, [im], [texts[i]], [ks[i]], 10.0)[0]
        assert out[i]['grid_hw'] == (im.shape[1] // 16, im.shape[2] // 16)
        assert out[i]['cams'].shape == (ks[i], *out[i]['grid_hw'])
        assert torch.allclose(out[i]['cams'], single['cams'], atol=1e-5)
        assert torch.allclose(
            out[i]['attn_last'], single['attn_last'], atol=1e-6)
        # CAM = ReLU(Σ_d w_d A_d), min-max twice
        raw = torch.einsum('kd,dhw->khw', out[i]['cam_weights'],
                           out[i]['activations']).clamp(min=0)
        assert torch.allclose(minmax_twice(raw), out[i]['cams'], atol=1e-5)
        assert torch.allclose(out[i]['cam_weights'], out[i]['gradients'].mean(
            (2, 3)))
        # the softmax targets: row j's entry j, rows sum to 1
        assert torch.allclose(out[i]['probs'].sum(-1), torch.ones(ks[i]))


def test_gradients_only_on_activation(tiny_visual):
    v = tiny_visual
    cam = SoftmaxGradCAM(num_attn_layers=1)
    e = v.proj.shape[1]
    cam(v, torch.randn(1, 3, 32, 32), [torch.randn(3, e)], [1], 5.0)
    assert all(p.grad is None for p in v.parameters())


def test_pos_embed_resize():
    torch.manual_seed(3)
    pos = torch.randn(1 + 4 * 4, 8)
    same = resize_clip_pos_embed(pos, (4, 4), fp16_round=False)
    assert torch.allclose(same, pos, atol=1e-6)
    r = resize_clip_pos_embed(pos, (2, 6))
    assert r.shape == (13, 8)
    assert torch.equal(r, r.half().float())
    assert torch.equal(r[0], pos[0].half().float())
    with pytest.raises(ValueError, match='square'):
        resize_clip_pos_embed(torch.randn(11, 8), (2, 2))


def test_bad_input(tiny_visual):
    v = tiny_visual
    e = v.proj.shape[1]
    cam = SoftmaxGradCAM(num_attn_layers=2)
    with pytest.raises(ValueError, match='multiple of the patch'):
        cam(v, torch.randn(1, 3, 40, 32), [torch.randn(3, e)], [1], 1.0)
    with pytest.raises(ValueError, match='cannot hold'):
        cam(v, torch.randn(1, 3, 32, 32), [torch.randn(3, e)], [4], 1.0)
    with pytest.raises(ValueError, match='images'):
        cam(v, torch.randn(2, 3, 32, 32), [torch.randn(3, e)], [1], 1.0)
    with pytest.raises(ValueError, match='attention maps'):
        SoftmaxGradCAM(num_attn_layers=9)(v, torch.randn(1, 3, 32, 32),
                                          [torch.randn(3, e)], [1], 1.0)
    with pytest.raises(TypeError, match='VisionTransformer'):
        cam(
            torch.nn.Linear(2, 2), torch.randn(1, 3, 32, 32),
            [torch.randn(3, e)], [1], 1.0)
    with pytest.raises(ValueError, match='batch_mode'):
        SoftmaxGradCAM(batch_mode='loop')
    with pytest.raises(ValueError, match='num_attn_layers'):
        SoftmaxGradCAM(num_attn_layers=0)


def test_registered():
    from mmseg.registry import MODELS

    import mmseg_excel.models.losses.cgl_loss  # noqa: F401
    import mmseg_excel.models.pseudo_labels.gradcam  # noqa: F401
    assert MODELS.get('SoftmaxGradCAM') is SoftmaxGradCAM
    m = MODELS.build(dict(type='ConfidenceGuidedLoss', mu=0.9))
    assert m.mu == 0.9 and m.loss_name == 'loss_cgl'

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCELHead (§6): sizes, input forms, reference maths, losses, registry."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_excel.models.decode_heads import ExCELHead, predicted_affinity

L, D, C, K = 3, 24, 16, 5  # tiny sizes (layers, CLIP width, C, classes)


def _head(**kw):
    cfg = dict(
        in_channels=D,
        channels=C,
        num_classes=K,
        num_layers=L,
        num_decoder_layers=2,
        num_heads=4)
    cfg.update(kw)
    torch.manual_seed(0)
    return ExCELHead(**cfg).eval()


def _tokens(b=2, h=3, w=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(L, b, 1 + h * w, D, generator=g)


def _reference(head, tokens, h, w):
    """Independent re-computation of §6 with explicit attention maths."""
    x = tokens[:, :, 1:]
    maps = []
    for j, proj in enumerate(head.layer_projs):
        e = F.linear(
            F.relu(F.linear(x[j], proj.fc1.weight, proj.fc1.bias)),
            proj.fc2.weight, proj.fc2.bias)
        maps.append(e)
    cat = torch.cat(maps, dim=-1)  # (B, P, L*C) in layer order
    wf = head.fuse_conv.weight.flatten(1)
    f = cat @ wf.t() + head.fuse_conv.bias  # (B, P, C)
    t = f
    for blk in head.decoder_layers:
        nh = blk.attn.num_heads
        y = F.layer_norm(t, (C, ), blk.ln_1.weight, blk.ln_1.bias, 1e-5)
        qkv = y @ blk.attn.in_proj_weight.t() + blk.attn.in_proj_bias
        q, k, v = qkv.chunk(3, dim=-1)
        sh = lambda z: z.reshape(z.shape[0], z.shape[1], nh, -1).transpose(
            1, 2)  # noqa: E731
        a = torch.softmax(
            sh(q) @ sh(k).transpose(-1, -2) / (C // nh)**0.5, dim=-1)
        o = (a @ sh(v)).transpose(1, 2).reshape(t.shape)
        t = t + o @ blk.attn.out_proj.weight.t() + blk.attn.out_proj.bias
        y = F.layer_norm(t, (C, ), blk.ln_2.weight, blk.ln_2.bias, 1e-5)
        hdn = y @ blk.mlp.c_fc.weight.t() + blk.mlp.c_fc.bias
        hdn = hdn * torch.sigmoid(1.702 * hdn)
        t = t + hdn @ blk.mlp.c_proj.weight.t() + blk.mlp.c_proj.bias
    seg = t @ head.conv_seg.weight.flatten(1).t() + head.conv_seg.bias
    b = tokens.shape[1]
    u = F.normalize(f, dim=-1)
    g = u @ u.transpose(1, 2)
    aff = torch.sigmoid(3.0 * (g - g.mean()))
    return (seg.transpose(1, 2).reshape(b, K, h,
                                        w), f.transpose(1,
                                                        2).reshape(b, C, h,
                                                                   w), aff)


def test_vit_b16_parameter_count():
    voc = ExCELHead(768, 256, num_classes=21, num_layers=12)
    assert sum(p.numel() for p in voc.parameters()) == 6_313_237
    fuse = sum(p.numel() for n, p in voc.named_parameters()
               if n.startswith(('layer_projs', 'fuse_conv')))
    assert fuse == 3_938_560
    coco = ExCELHead(768, 256, num_classes=81, num_layers=12)
    assert sum(p.numel() for p in coco.parameters()) == 6_328_657


def test_forward_matches_reference_non_square():
    head = _head()
    tok = _tokens(h=3, w=4)
    out = head(tok, hw=(3, 4))
    seg, f, aff = _reference(head, tok, 3, 4)
    assert out['seg'].shape == (2, K, 3, 4)
    assert out['affinity'].shape == (2, 12, 12)
    torch.testing.assert_close(out['fused'], f, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out['seg'], seg, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out['affinity'], aff, rtol=1e-5, atol=1e-6)


def test_input_forms_agree():
    head = _head()
    tok = _tokens(h=2, w=2)
    ref = head(tok)  # square grid inferred
    maps = tok[:, :, 1:].transpose(2, 3).reshape(L, 2, D, 2, 2)
    for inp in (maps, list(maps)):
        out = head(inp)
        for k in ('seg', 'fused', 'affinity'):
            torch.testing.assert_close(out[k], ref[k])
    no_cls = _head(with_cls_token=False)
    torch.testing.assert_close(no_cls(tok[:, :, 1:])['seg'], ref['seg'])


def test_bad_inputs():
    head = _head()
    with pytest.raises(ValueError, match='not a square grid'):
        head(_tokens(h=3, w=4))
    with pytest.raises(ValueError, match='does not match'):
        head(_tokens(h=3, w=4), hw=(4, 4))
    with pytest.raises(ValueError, match='num_layers=3'):
        head(_tokens()[:2], hw=(3, 4))
    with pytest.raises(ValueError, match='aff_mean_mode'):
        _head(aff_mean_mode='pixel')
    with pytest.raises(ValueError, match='num_heads'):
        _head(num_heads=5)


def test_affinity_mean_modes():
    f = torch.randn(3, 8, 2, 3)
    u = F.normalize(f.flatten(2), dim=1)
    g = u.transpose(1, 2) @ u
    torch.testing.assert_close(
        predicted_affinity(f, gamma=2.0, beta=0.5),
        torch.sigmoid(2.0 * (g - 0.5 * g.mean())))
    per_img = predicted_affinity(f, mean_mode='image')
    torch.testing.assert_close(per_img[1],
                               torch.sigmoid(3.0 * (g[1] - g[1].mean())))
    # batch-global mean (quirk 14): image 0 depends on the other images
    a = predicted_affinity(f)[0]
    b = predicted_affinity(f[:1])[0]
    assert (a - b).abs().max() > 1e-4


def test_dropout_in_train_mode_only():
    head = _head(dropout_ratio=0.5)
    tok = _tokens(b=4, h=4, w=4)
    f_eval = head(tok)['fused']
    head.train()
    torch.manual_seed(1)
    f_train = head(tok)['fused']
    zeroed = (f_train.abs().sum((2, 3)) == 0)
    assert zeroed.any() and not zeroed.all()
    kept = ~zeroed
    torch.testing.assert_close(f_train[kept], 2 * f_eval[kept])


def _samples(labels):
    out = []
    for y in labels:
        ds = SegDataSample()
        ds.pseudo_sem_seg = PixelData(data=y[None])
        ds.gt_sem_seg = PixelData(data=torch.zeros_like(y)[None])  # unused
        out.append(ds)
    return out


def test_loss_by_feat_reads_pseudo_sem_seg():
    head = _head()
    tok = _tokens(b=2, h=3, w=3)
    out = head(tok)
    g = torch.Generator().manual_seed(2)
    y = torch.randint(0, K, (2, 48, 48), generator=g)
    from_samples = head.loss_by_feat(out, _samples(y))
    from_tensor = head.loss_by_feat(out, y)
    assert set(from_samples) == {'loss_seg', 'loss_aff', 'acc_seg'}
    for k in from_samples:
        torch.testing.assert_close(from_samples[k], from_tensor[k])
    # the values are the registered losses on upsampled logits
    from mmseg_excel.models.losses import (affinity_labels_from_mask,
                                           affinity_loss,
                                           balanced_cross_entropy)
    up = F.interpolate(
        out['seg'], size=(48, 48), mode='bilinear', align_corners=False)
    torch.testing.assert_close(from_tensor['loss_seg'],
                               balanced_cross_entropy(up, y))
    z = affinity_labels_from_mask(y, (3, 3), 8)
    torch.testing.assert_close(from_tensor['loss_aff'],
                               0.1 * affinity_loss(out['affinity'], z))
    # own-prediction target changes only the affinity term
    other = head.loss_by_feat(out, y, aff_target=up.argmax(1))
    torch.testing.assert_close(other['loss_seg'], from_tensor['loss_seg'])
    assert other['loss_aff'] != from_tensor['loss_aff']
    bad = _samples(y)
    del bad[1].pseudo_sem_seg
    with pytest.raises(KeyError, match=r'pseudo_sem_seg'):
        head.loss_by_feat(out, bad)


def test_affinity_loss_trains_the_fusion_only():
    head = _head().train()
    head.dropout.p = 0.0
    tok = _tokens(b=2, h=3, w=3)
    y = torch.randint(0, K, (2, 48, 48))
    losses = head.loss(tok, _samples(y), train_cfg=None)
    losses['loss_aff'].backward()
    assert head.conv_seg.weight.grad is None or \
        head.conv_seg.weight.grad.abs().sum() == 0
    assert head.fuse_conv.weight.grad.abs().sum() > 0


def test_registry_build_and_predict():
    from mmseg.registry import MODELS
    head = MODELS.build(
        dict(
            type='ExCELHead',
            in_channels=D,
            channels=C,
            num_classes=K,
            num_layers=L,
            num_heads=4)).eval()
    tok = _tokens(b=1, h=2, w=3)
    metas = [dict(img_shape=(32, 48), pad_shape=(32, 48))]
    logits = head.predict(tok, metas, test_cfg=None, hw=(2, 3))
    expect = F.interpolate(
        head(tok, hw=(2, 3))['seg'],
        size=(32, 48),
        mode='bilinear',
        align_corners=False)
    torch.testing.assert_close(logits, expect)


def test_loss_with_non_square_grid():
    head = _head()
    tok = _tokens(b=2, h=2, w=3)
    y = torch.randint(0, K, (2, 32, 48))
    losses = head.loss(tok, _samples(y), train_cfg=None, hw=(2, 3))
    direct = head.loss_by_feat(head(tok, hw=(2, 3)), y)
    torch.testing.assert_close(losses['loss_seg'], direct['loss_seg'])
    torch.testing.assert_close(losses['loss_aff'], direct['loss_aff'])

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""CLIP-ES Softmax-GradCAM against the official outputs (clip_es/gradcam.pt).

The CLIP comes from ``inputs.pt['clip_file']`` (relative to the fixture
folder); sizes, labels and counts are read from the files. Tolerances follow
clip_es/README.md: one frozen block 2e-5 absolute, positional table 1e-5,
GradCAM from the stored tokens 1e-5 (logits relative, cams), high-resolution
maps 1e-5; end to end 2e-3 (features, relative to their max), 1e-2
(attention), 5e-3 (CAMs).
"""
import open_clip
import pytest
import torch
import torch.nn.functional as F

from mmseg_excel.models.pseudo_labels.gradcam import (SoftmaxGradCAM,
                                                      clip_block_forward,
                                                      resize_clip_pos_embed)

pytestmark = pytest.mark.parity


def _load(p):
    return torch.load(p, weights_only=False)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


@pytest.fixture(scope='module')
def fixtures(clip_es_parity_dir):
    inp = _load(clip_es_parity_dir / 'inputs.pt')
    grad = _load(clip_es_parity_dir / 'gradcam.pt')
    text = _load(clip_es_parity_dir / 'text.pt')
    sd = _load(clip_es_parity_dir / inp['clip_file'])
    # the official clip.load: fp16 weights used in fp32
    model = open_clip.model.build_model_from_openai_state_dict(sd)
    model = model.float().eval().requires_grad_(False)
    return inp, grad, text, model


def _grid(visual, hw):
    p = visual.conv1.stride
    return hw[0] // p[0], hw[1] // p[1]


def test_logit_scale_and_text_set(fixtures):
    inp, grad, text, model = fixtures
    assert abs(model.logit_scale.exp().item() - text['logit_scale_exp']) < 1e-5
    for im in grad['images']:
        want = torch.cat(
            [text['fg_text_features'][im['labels']], text['bg_text_features']])
        assert _rel(want, im['text_features']) < 1e-6


def test_pos_embed_and_stem(fixtures):
    inp, grad, _, model = fixtures
    v = model.visual
    cam = SoftmaxGradCAM()
    for im in grad['images']:
        pos = resize_clip_pos_embed(v.positional_embedding,
                                    _grid(v, im['input_hw']))
        assert (pos - im['pos_embed_resized']).abs().max().item() < 1e-5
        # the official table is fp16-rounded, ours too
        ref = im['pos_embed_resized']
        assert torch.equal(ref, ref.half().float())
        assert torch.equal(pos, pos.half().float())
    # without the fp16 rounding the table differs (the quirk is exercised)
    im = grad['images'][0]
    pos32 = resize_clip_pos_embed(
        v.positional_embedding, _grid(v, im['input_hw']), fp16_round=False)
    assert (pos32 - im['pos_embed_resized']).abs().max().item() > 0
    ffb = grad['frozen_forward_blocks']
    x = cam.embed(v, inp['inputs'][ffb['image_index']])
    assert (x[0] - ffb['after_ln_pre']).abs().max().item() < 1e-5


def test_frozen_blocks_one_at_a_time(fixtures):
    _, grad, _, model = fixtures
    ffb = grad['frozen_forward_blocks']
    outs = ffb['block_outputs']
    blocks = model.visual.transformer.resblocks
    assert outs.shape[0] == len(blocks) - 1
    prev = ffb['after_ln_pre']
    with torch.no_grad():
        for i in range(outs.shape[0]):
            y, _ = clip_block_forward(blocks[i], prev[None])
            err = (y[0] - outs[i]).abs().max().item()
            assert err < 2e-5, f'block {i}: {err}'
            prev = outs[i]


@pytest.mark.parametrize('mode', ['vmap', 'replicate'])
def test_gradcam_from_stored_tokens(fixtures, mode):
    _, grad, _, model = fixtures
    v = model.visual
    cam = SoftmaxGradCAM(
        batch_mode=mode,
        num_attn_layers=grad['images'][0]['attn_weights_last8'].shape[0])
    scale = grad['logit_scale_exp']
    ims = grad['images']
    # all images in one call when their grids agree, else one by one
    for im in ims:
        hw = _grid(v, im['input_hw'])
        tokens = im['image_features'][:, 0][None]
        k = len(im['labels'])
        out = cam.gradcam(
            v,
            tokens, [im['text_features']], [k],
            scale,
            hw,
            return_intermediates=True)
        assert (out['activations'][0] -
                im['activations'][0]).abs().max() < 1e-5
        assert (out['attn'][0] -
                im['attn_weights_last8'][-1]).abs().max() < 1e-5
        assert len(im['per_label']) == k
        for j, pl in enumerate(im['per_label']):
            assert pl['target'] == j
            probs = out['probs'][0][j]
            assert _rel(probs, pl['logits_per_image'][0]) < 1e-5
            assert _rel(out['gradients'][0][j], pl['gradients'][0]) < 1e-5
            assert _rel(out['cam_weights'][0][j], pl['cam_weights']) < 1e-5
            g = out['cams'][0][j]
            assert (g - pl['grayscale_cam']).abs().max().item() < 1e-5
            # min-max twice: the maximum is 1 - 1e-7 rounded (0.99999988)
            assert g.max().item() == pytest.approx(
                pl['grayscale_cam'].max().item(), abs=1e-7)
            size = tuple(pl['grayscale_cam_highres'].shape)
            assert size == tuple(im['size_hw'])
            hi = F.interpolate(
                g[None, None], size=size, mode='bilinear',
                align_corners=False)[0, 0]
            assert (hi - pl['grayscale_cam_highres']).abs().max() < 1e-5


@pytest.mark.parametrize('mode', ['vmap', 'replicate'])
def test_gradcam_batched_over_images(fixtures, mode):
    """Images of one grid batched together give the single-image results."""
    _, grad, _, model = fixtures
    v = model.visual
    ims = grad['images']
    hw = _grid(v, ims[0]['input_hw'])
    cam = SoftmaxGradCAM(batch_mode=mode)
    # the first image's tokens (perturbed after the first copy) with the text
    # sets of all images (K differ): one batch of equal-size "images"
    tok = ims[0]['image_features'][:, 0]
    gen = torch.Generator().manual_seed(0)
    toks = torch.stack([
        tok + 0.05 * i * tok.std() * torch.randn(tok.shape, generator=gen)
        for i in range(len(ims))
    ])
    texts = [im['text_features'] for im in ims]
    ks = [len(im['labels']) for im in ims]
    out = cam.gradcam(v, toks, texts, ks, grad['logit_scale_exp'], hw)
    for i in range(len(ims)):
        single = cam.gradcam(v, toks[i][None], [texts[i]], [ks[i]],
                             grad['logit_scale_exp'], hw)
        assert (out['cams'][i] - single['cams'][0]).abs().max() < 1e-5
        assert _rel(out['probs'][i], single['probs'][0]) < 1e-5
    first = ims[0]['per_label']
    for j, pl in enumerate(first):
        assert (out['cams'][0][j] - pl['grayscale_cam']).abs().max() < 1e-5


@pytest.mark.parametrize('mode', ['vmap', 'replicate'])
def test_end_to_end_from_inputs(fixtures, mode):
    inp, grad, _, model = fixtures
    v = model.visual
    ims = grad['images']
    n_last = ims[0]['attn_weights_last8'].shape[0]
    cam = SoftmaxGradCAM(num_attn_layers=n_last, batch_mode=mode)
    assert ims[0]['n_attn_maps'] == len(v.transformer.resblocks)
    res = cam(
        v,
        inp['inputs'], [im['text_features'] for im in ims],
        [len(im['labels']) for im in ims],
        grad['logit_scale_exp'],
        return_intermediates=True)
    for r, im in zip(res, ims):
        assert tuple(r['grid_hw']) == _grid(v, im['input_hw'])
        assert _rel(r['tokens'], im['image_features'][:, 0]) < 2e-3
        assert (r['attn_last'] - im['attn_weights_last8']).abs().max() < 1e-2
        assert (r['attn_mean'] - im['attn_weight_mean8']).abs().max() < 1e-2
        for j, pl in enumerate(im['per_label']):
            assert (r['cams'][j] - pl['grayscale_cam']).abs().max() < 5e-3

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Parity of WeakCLIP with the official outputs, stage by stage
(fixture folder ``$EXCEL_PARITY_DIR/weakclip``; every size from its files)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from weakclip_case import build_model, load

pytestmark = pytest.mark.parity


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    assert a.shape == b.shape, (a.shape, b.shape)
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


@pytest.fixture(scope='module')
def wc_dir(parity_dir) -> Path:
    root = parity_dir / 'weakclip'
    if not (root / 'inputs.pt').is_file():
        raise FileNotFoundError(f'WeakCLIP parity fixtures not found in '
                                f'{root}')
    return root


@pytest.fixture(scope='module')
def case(wc_dir, tmp_path_factory):
    model, report = build_model(wc_dir, tmp_path_factory.mktemp('wc'))
    model.eval()
    files = {
        n: load(wc_dir, f'{n}.pt')
        for n in ('inputs', 'text', 'backbone', 'decoder', 'head', 'train',
                  'infer')
    }
    return model, report, files


def test_weights_load(case):
    """Every official non-CLIP entry lands on one of our parameters; the
    only keys not in the file are the CLIP's (loaded from the CLIP file)."""
    model, report, _ = case
    assert not report['unexpected'], report['unexpected'][:5]
    assert all(k.startswith(('backbone.', 'text_encoder.'))
               for k in report['missing']), report['missing'][:5]
    sd = model.state_dict()
    for k, v in report['state'].items():
        assert torch.equal(sd[k].to(v.dtype), v), k


def test_text_encoder(case):
    model, _, f = case
    text = f['text']
    assert torch.equal(model.name_tokens, text['tokens'])
    enc = model.text_encoder
    ctx = text['contexts'].float()
    assert enc.context_length == text['context_length_text']
    assert _rel(enc.transformer_input(text['tokens'], ctx),
                text['transformer_input']) < 1e-5
    with torch.no_grad():
        emb = model.text_embeddings(1)
    assert _rel(emb, text['text_embeddings']) < 1e-5


def test_backbone_stagewise(case):
    model, _, f = case
    bb, img = f['backbone'], f['inputs']['inputs'].float()
    backbone = model.backbone
    assert _rel(backbone.positional_embedding, bb['pos_embed_loaded']) < 1e-6
    with torch.no_grad():
        x, hw = backbone.embed(img)
        assert _rel(x, bb['tokens_ln_pre']) < 1e-5
        # each block from the stored output of the one before
        from mmseg_excel.models.necks.svc import standard_block
        prev = bb['tokens_ln_pre']
        for i, block in enumerate(backbone.resblocks):
            out, _, _ = standard_block(block, prev, need_attn=False)
            assert _rel(out[0], bb['block_outputs_image0'][i]) < 1e-5, i
            prev = torch.stack([bb['block_outputs_image0'][i], out[1]]) \
                if i < len(backbone.resblocks) - 1 else out
        levels = backbone.forward_levels(None, tokens=bb['tokens_ln_pre'],
                                         hw=hw)
    for ours, ref in zip(levels.features, bb['features']):
        assert _rel(ours, ref) < 1e-5
    assert len(levels.features) == len(bb['features'])
    # embeddings from the stored last block
    last = bb['block_outputs_image0'][-1][None]
    with torch.no_grad():
        e = backbone.ln_post(last) @ backbone.proj
    assert _rel(e[:, 0], bb['global_embedding'][:1]) < 1e-5
    assert _rel(levels.global_embedding, bb['global_embedding']) < 1e-5
    assert _rel(levels.dense_embedding, bb['dense_embedding']) < 1e-5


def test_pyramid_adapter(case):
    model, _, f = case
    with torch.no_grad():
        pyr = model.adapter(f['backbone']['features'])
    for ours, ref in zip(pyr, f['backbone']['pyramid']):
        assert _rel(ours, ref) < 1e-5


def test_co_attention_and_score_map(case):
    model, _, f = case
    dec = f['decoder']
    cd = model.context_decoder
    with torch.no_grad():
        mem = cd.memory_proj(dec['visual_context'])
        txt = cd.text_proj(dec['text_embeddings'])
        assert _rel(mem, dec['memory']) < 1e-5
        assert _rel(txt, dec['text_proj']) < 1e-5
        for i, layer in enumerate(cd.decoder):
            assert _rel(layer(txt, mem), dec['decoder_layer_outputs'][i]) \
                < 1e-5, i
        for i, layer in enumerate(cd.anti_decoder):
            assert _rel(layer(mem, txt),
                        dec['anti_decoder_layer_outputs'][i]) < 1e-5, i
        dt, dv = cd(dec['text_embeddings'], dec['visual_context'])
        assert _rel(dt, dec['text_diff']) < 1e-5
        assert _rel(dv, dec['visual_diff']) < 1e-5
        b, n, e = dec['visual_context'].shape
        g = dec['visual_context'][:, 0]
        h, w = dec['dense_embedding_updated'].shape[-2:]
        dense = dec['visual_context'][:, 1:].transpose(1, 2).reshape(
            b, e, h, w)
        dense_u, text_u, score = model.match(g, dense, dec['text_embeddings'])
    assert _rel(model.gamma, dec['gamma']) < 1e-6
    assert _rel(dense_u, dec['dense_embedding_updated']) < 1e-5
    assert _rel(text_u, dec['text_embeddings_updated']) < 1e-5
    assert _rel(score, dec['score_map']) < 1e-5


def test_neck_and_head_eval(case):
    model, _, f = case
    head, pyr = f['head'], f['backbone']['pyramid']
    import torch.nn.functional as F
    score = f['decoder']['score_map']
    with torch.no_grad():
        x = []
        for p, ref in zip(pyr, head['score_map_resized']):
            s = F.interpolate(score, size=p.shape[-2:], mode='bilinear',
                              align_corners=True)
            assert _rel(s, ref) < 1e-5
            x.append(torch.cat([p, ref], 1))
        neck = model.neck(x)
        for ours, ref in zip(neck, head['neck_outputs']):
            assert _rel(ours, ref) < 1e-5
        logits = model.decode_head(list(head['neck_outputs']))
    assert _rel(logits, head['logits']) < 1e-5

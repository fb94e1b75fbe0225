# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Unit tests of the class prompts, CLIP text embeddings, TSE, the attribute
bank (build, cache, validation) and ``ExCELTextHead``, with the tiny CLIP."""
import json
import os

import pytest
import torch

from mmseg_excel.models.text import (
    BACKGROUND_SETS, attribute_weights, CLASS_NAME_SETS, ExCELTextHead,
    build_attribute_bank, encode_class_texts, get_attribute_bank,
    get_clip_tokenizer, load_attribute_bank, load_clip_model,
    num_masked_clusters, resolve_bg_names, resolve_class_names,
    resolve_templates, save_attribute_bank, text_semantic_enrichment,
    text_tower_fingerprint)
from mmseg_excel.models.text import attribute_bank as ab_mod

CLASSES = ['apple', 'star', 'ring']
ATTRS = [
    'it is red.', 'it is round.', 'it has a stem.', 'it is shiny.',
    'it is small.', 'it has points.'
]


def _write_desc(path, classes=CLASSES, attrs=ATTRS, extra=''):
    data = {
        c: [f'A Clean Origami {c}. {a}{extra}' for a in attrs]
        for c in classes
    }
    with open(path, 'w') as f:
        json.dump(data, f)
    return str(path)


@pytest.fixture(scope='module')
def tiny(tiny_clip_files):
    torch.set_num_threads(1)
    model = load_clip_model(tiny_clip_files['name'],
                            tiny_clip_files['open_clip'])
    tok = get_clip_tokenizer(tiny_clip_files['name'])
    return dict(model=model, tok=tok, **tiny_clip_files)


# ------------------------------------------------------------------ prompts
def test_prompt_sets():
    assert len(CLASS_NAME_SETS['voc']) == 20
    assert len(CLASS_NAME_SETS['coco_excel']) == 80
    assert CLASS_NAME_SETS['coco_excel'][31] == 'sknowboard'  # typo kept
    assert len(BACKGROUND_SETS['voc']) == 25
    assert len(BACKGROUND_SETS['coco']) == 23
    assert set(BACKGROUND_SETS['voc']) - set(BACKGROUND_SETS['coco']) == {
        'keyboard', 'sign'
    }
    assert resolve_bg_names(None) == []
    assert resolve_templates(None) == ['a clean origami {}.']
    assert resolve_templates('a photo of {}.') == ['a photo of {}.']
    with pytest.raises(KeyError, match='unknown class-name list'):
        resolve_class_names('vocc')
    with pytest.raises(ValueError, match='placeholder'):
        resolve_templates(['no slot'])
    with pytest.raises(TypeError, match='non-empty strings'):
        resolve_class_names(['cat', ''])


# ------------------------------------------------------- class embeddings
def test_encode_class_texts_order_of_ops(tiny):
    names = ['cat', 'dog']
    templates = ['a photo of a {}.', 'a clean origami {}.']
    got = encode_class_texts(tiny['model'], tiny['tok'], names, templates)
    ref = []
    with torch.no_grad():
        for n in names:
            e = tiny['model'].encode_text(
                tiny['tok']([t.format(n) for t in templates]))
            e = e / e.norm(dim=-1, keepdim=True)
            m = e.mean(0)
            ref.append(m / m.norm())
    ref = torch.stack(ref)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
    # normalising before the mean matters (differs from mean-then-normalise)
    with torch.no_grad():
        raw = tiny['model'].encode_text(
            tiny['tok']([t.format('cat') for t in templates])).mean(0)
    assert not torch.allclose(got[0], raw / raw.norm(), atol=1e-4)


def test_too_long_text_rejected(tiny):
    with pytest.raises(ValueError, match='context length'):
        encode_class_texts(tiny['model'], tiny['tok'], ['word ' * 90], ['{}'])


# ------------------------------------------------------------------- TSE
@pytest.mark.parametrize('m,keep,r', [(112, 0.9, 11), (224, 0.9, 22),
                                      (10, 0.9, 0), (20, 0.5, 10),
                                      (7, 1.0, 0)])
def test_num_masked_closed_form(m, keep, r):
    assert num_masked_clusters(m, keep) == r


def _tse_reference(fg, bg, centers, keep):
    """Per-row loop: sort, mask the r smallest, softmax."""
    m = centers.shape[1]
    r = int((1 - keep) * m)
    rows = []
    for row in fg:
        logits = row @ centers
        order = torch.argsort(logits)
        masked = logits.clone()
        masked[order[:r]] = float('-inf')
        w = torch.softmax(masked, 0)
        rows.append(w @ centers.t() + row)
    out = torch.cat([torch.stack(rows), bg])
    return out / out.norm(dim=1, keepdim=True)


@pytest.mark.parametrize('m', [37, 112])
def test_tse_matches_reference_and_masks_count(m):
    g = torch.Generator().manual_seed(m)
    fg = torch.nn.functional.normalize(torch.randn(5, 16, generator=g), dim=1)
    bg = torch.nn.functional.normalize(torch.randn(3, 16, generator=g), dim=1)
    centers = torch.randn(16, m, generator=g) * 0.3
    out = text_semantic_enrichment(fg, bg, centers, 0.9)
    torch.testing.assert_close(out, _tse_reference(fg, bg, centers, 0.9))
    # background rows only re-normalised (already unit): unchanged
    torch.testing.assert_close(out[5:], bg)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(8))
    # exactly floor((1-0.9)·M) zero weights per row, on the smallest logits
    w = attribute_weights(fg, centers, 0.9)
    r = int((1 - 0.9) * m)
    assert ((w == 0).sum(1) == r).all()
    low = (fg @ centers).argsort(dim=1)[:, :r]
    assert (w.gather(1, low) == 0).all()
    torch.testing.assert_close(w.sum(1), torch.ones(5))
    other = text_semantic_enrichment(fg, bg, centers, 1.0)
    assert not torch.allclose(out[:5], other[:5], atol=1e-6)


def test_tse_dim_mismatch():
    with pytest.raises(ValueError, match='another CLIP'):
        text_semantic_enrichment(
            torch.randn(2, 8), torch.randn(1, 8), torch.randn(6, 4))


# ------------------------------------------------------------------- bank
def test_bank_build_roundtrip_and_flags(tiny, tmp_path):
    desc = _write_desc(tmp_path / 'd.json')
    bank = build_attribute_bank(
        tiny['model'], tiny['tok'], desc, 5, seed=0, n_init=3)
    e = bank.centers.shape[0]
    assert bank.centers.shape == (e, 5) and bank.flags.shape == (3, 5)
    assert bank.class_order == CLASSES
    # flags: each description's nearest centre (lower-cased texts)
    texts = [s.lower() for v in json.load(open(desc)).values() for s in v]
    with torch.no_grad():
        emb = tiny['model'].encode_text(tiny['tok'](texts)).float()
    emb = emb / emb.norm(dim=1, keepdim=True)
    lab = torch.cdist(emb, bank.centers.t()).argmin(1)
    flags = torch.zeros(3, 5)
    flags[torch.arange(len(texts)) // len(ATTRS), lab] = 1
    assert torch.equal(flags, bank.flags)
    # centres are member means, not re-normalised
    for k in range(5):
        torch.testing.assert_close(
            bank.centers[:, k], emb[lab == k].mean(0), rtol=1e-4, atol=1e-5)
    path = tmp_path / 'bank.pt'
    save_attribute_bank(bank, str(path))
    assert [p for p in os.listdir(tmp_path) if p.endswith('.tmp')] == []
    back = load_attribute_bank(str(path))
    assert torch.equal(back.centers, bank.centers)
    assert back.clip['text_fingerprint'] == text_tower_fingerprint(
        tiny['model'])
    assert back.descriptions_sha256 == bank.descriptions_sha256


def test_bank_mismatch_errors(tiny, tiny_clip_files, tmp_path):
    desc = _write_desc(tmp_path / 'd.json')
    bank_path = str(tmp_path / 'bank.pt')
    common = dict(
        descriptions=desc,
        bank_file=bank_path,
        num_clusters=4,
        seed=0,
        n_init=2,
        verbose=False)
    get_attribute_bank(tiny['model'], tiny['tok'], num_classes=3, **common)
    assert os.path.isfile(bank_path)
    # other CLIP (same architecture, other weights)
    import open_clip
    torch.manual_seed(1)
    other = open_clip.create_model(tiny_clip_files['name']).eval()
    with pytest.raises(ValueError, match='another CLIP'):
        get_attribute_bank(other, tiny['tok'], num_classes=3, **common)
    # class count of the model
    with pytest.raises(ValueError, match='has 3 classes but the model has 4'):
        get_attribute_bank(
            tiny['model'],
            tiny['tok'],
            bank_file=bank_path,
            num_classes=4,
            verbose=False)
    # other class order (same classes, reordered file)
    desc2 = _write_desc(tmp_path / 'd2.json', classes=CLASSES[::-1])
    with pytest.raises(ValueError, match='class order'):
        get_attribute_bank(
            tiny['model'],
            tiny['tok'],
            **dict(common, descriptions=desc2),
            num_classes=3)
    # other descriptions (same classes, other text)
    desc3 = _write_desc(tmp_path / 'd3.json', extra=' really')
    with pytest.raises(ValueError, match='other descriptions'):
        get_attribute_bank(
            tiny['model'],
            tiny['tok'],
            **dict(common, descriptions=desc3),
            num_classes=3)
    # other cluster count
    with pytest.raises(ValueError, match='num_clusters=6'):
        get_attribute_bank(
            tiny['model'],
            tiny['tok'],
            **dict(common, num_clusters=6),
            num_classes=3)
    # no source at all / missing bank without descriptions
    with pytest.raises(FileNotFoundError, match='attribute bank file'):
        get_attribute_bank(
            tiny['model'], tiny['tok'], bank_file=str(tmp_path / 'none.pt'))
    with pytest.raises(ValueError, match='n_clusters=99'):
        build_attribute_bank(tiny['model'], tiny['tok'], desc, 99)


def test_bad_descriptions(tmp_path):
    from mmseg_excel.models.text import load_descriptions
    p = tmp_path / 'bad.json'
    p.write_text('{"cat": "not a list"}')
    with pytest.raises(ValueError, match='bad.json: class .cat.'):
        load_descriptions(str(p))
    p.write_text('[1, 2]')
    with pytest.raises(ValueError, match='JSON object'):
        load_descriptions(str(p))
    with pytest.raises(FileNotFoundError, match='descriptions file'):
        load_descriptions(str(tmp_path / 'missing.json'))


def test_bank_cache_reuse(tiny, tmp_path, monkeypatch):
    desc = _write_desc(tmp_path / 'd.json')
    cache = tmp_path / 'cache'
    kw = dict(
        descriptions=desc,
        num_clusters=4,
        seed=3,
        n_init=2,
        cache_dir=str(cache),
        num_classes=3,
        verbose=False)
    first = get_attribute_bank(tiny['model'], tiny['tok'], **kw)
    files = os.listdir(cache)
    assert len(files) == 1 and files[0].endswith('_k4_s3_n2.pt')
    mtime = os.path.getmtime(cache / files[0])

    def boom(*a, **k):
        raise AssertionError('bank rebuilt instead of read from the cache')

    monkeypatch.setattr(ab_mod, 'build_attribute_bank', boom)
    second = get_attribute_bank(tiny['model'], tiny['tok'], **kw)
    assert torch.equal(first.centers, second.centers)
    assert second.source == str(cache / files[0])
    assert os.path.getmtime(cache / files[0]) == mtime
    # another seed is another cache entry -> would rebuild
    with pytest.raises(AssertionError, match='rebuilt'):
        get_attribute_bank(tiny['model'], tiny['tok'], **dict(kw, seed=4))


def test_list_bank_format(tmp_path):
    """The upstream ``.pth`` layout ``[C, flag]`` loads."""
    c, f = torch.rand(8, 5), torch.zeros(2, 5)
    torch.save([c, f], tmp_path / 'up.pth')
    bank = load_attribute_bank(str(tmp_path / 'up.pth'))
    assert torch.equal(bank.centers, c) and bank.class_order is None
    torch.save([c, torch.zeros(2, 4)], tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match='do not match'):
        load_attribute_bank(str(tmp_path / 'bad.pth'))


# -------------------------------------------------------------- text head
def test_text_head(tiny, tmp_path):
    desc = _write_desc(tmp_path / 'd.json')
    clip = dict(model_name=tiny['name'], pretrained=tiny['open_clip'])
    tse = dict(
        descriptions=desc,
        num_clusters=4,
        keep_ratio=0.5,
        seed=0,
        n_init=2,
        cache_dir=str(tmp_path / 'c'))
    head = ExCELTextHead(
        clip=clip,
        class_names=CLASSES,
        bg_names=['sky'],
        templates='origami',
        tse=tse)
    assert head.num_fg == 3 and head.num_bg == 1
    assert list(head.parameters()) == [] and head.state_dict() == {}
    plain = encode_class_texts(tiny['model'], tiny['tok'], CLASSES + ['sky'],
                               ['a clean origami {}.'])
    torch.testing.assert_close(head.plain_embeds, plain)
    bank = load_attribute_bank(
        os.path.join(tmp_path / 'c',
                     os.listdir(tmp_path / 'c')[0]))
    ref = text_semantic_enrichment(plain[:3], plain[3:], bank.centers, 0.5)
    torch.testing.assert_close(head(), ref)
    assert head() is head.text_embeds
    assert not hasattr(head, 'clip_model')
    # no TSE: plain embeddings
    head2 = ExCELTextHead(
        clip=clip, class_names=CLASSES, bg_names=['sky'], tse=None)
    torch.testing.assert_close(head2(), plain)
    # class count vs bank
    with pytest.raises(ValueError, match='3 classes but the model has 2'):
        ExCELTextHead(clip=clip, class_names=CLASSES[:2], tse=tse)
    with pytest.raises(ValueError, match='unknown keys in tse'):
        ExCELTextHead(clip=clip, class_names=CLASSES, tse=dict(tse, topk=0.9))


def test_text_head_registered(tiny):
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    init_default_scope('mmseg')
    head = MODELS.build(
        dict(
            type='ExCELTextHead',
            clip=dict(model_name=tiny['name'], pretrained=tiny['open_clip']),
            class_names='voc_excel',
            bg_names='voc',
            tse=None))
    assert head().shape[0] == 45 and head.num_fg == 20


def test_openai_layout_file_fp16(tiny):
    """An OpenAI-layout state dict (fp16 values) encodes like the open_clip
    model with fp16-rounded weights, and has another fingerprint. (The tiny
    CLIP has 32-wide heads, so it needs its ``model_name``: without one,
    OpenAI's rule heads = width // 64 applies, as for the parity CLIP.)"""
    import copy
    oa = load_clip_model(tiny['name'], tiny['openai'])
    rounded = copy.deepcopy(tiny['model'])
    rounded.load_state_dict({
        k: v.half().float()
        for k, v in tiny['model'].state_dict().items()
    })
    names, tmpl = ['cat', 'dog'], ['a clean origami {}.']
    torch.testing.assert_close(
        encode_class_texts(oa, tiny['tok'], names, tmpl),
        encode_class_texts(rounded, tiny['tok'], names, tmpl),
        rtol=1e-5,
        atol=1e-6)
    assert text_tower_fingerprint(oa) == text_tower_fingerprint(rounded)
    assert text_tower_fingerprint(oa) != text_tower_fingerprint(tiny['model'])

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Class text embeddings, TSE and the attribute bank vs the official code.

Fixtures: ``text.pt``, ``attr_bank.pt``, ``mini_clip_openai.pt`` (ExCEL) and
``clip_es/text.pt`` with the CLIP named in ``clip_es/inputs.pt`` (README:
text features to 1e-5). Every size comes from the files.
"""
import json

import pytest
import torch

from mmseg_excel.models.text import (CLASS_NAME_SETS, BACKGROUND_SETS,
                                     ExCELTextHead, build_attribute_bank,
                                     encode_class_texts, get_clip_tokenizer,
                                     load_attribute_bank, load_clip_model,
                                     text_semantic_enrichment)

pytestmark = pytest.mark.parity

KEEP_RATIO = 0.9  # official topK (EXCEL.md §2.4)


def _load(p):
    return torch.load(p, weights_only=False)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


@pytest.fixture(scope='module')
def excel_clip(parity_dir):
    torch.set_num_threads(1)
    path = str(parity_dir / 'mini_clip_openai.pt')
    return dict(
        path=path,
        model=load_clip_model(None, path),
        tok=get_clip_tokenizer(None))


@pytest.fixture(scope='module')
def clip_es(clip_es_parity_dir):
    inputs = _load(clip_es_parity_dir / 'inputs.pt')
    path = str((clip_es_parity_dir / inputs['clip_file']).resolve())
    return dict(
        text=_load(clip_es_parity_dir / 'text.pt'),
        model=load_clip_model(None, path),
        tok=get_clip_tokenizer(None))


def test_excel_text_features(parity_dir, excel_clip):
    text = _load(parity_dir / 'text.pt')
    got = encode_class_texts(excel_clip['model'], excel_clip['tok'],
                             text['prompts'], [text['template']])
    assert got.shape == text['text_features'].shape
    assert _rel(got, text['text_features']) < 1e-5


def test_excel_prompt_lists(parity_dir):
    text = _load(parity_dir / 'text.pt')
    num_fg = text['attr_flag'].shape[0]
    assert text['prompts'][:num_fg] == list(CLASS_NAME_SETS['voc_excel'])
    assert text['prompts'][num_fg:] == list(BACKGROUND_SETS['voc'])
    bank = _load(parity_dir / 'attr_bank.pt')
    assert bank['class_order'] == list(CLASS_NAME_SETS['voc'])


def test_tse_from_fixture_bank(parity_dir):
    text = _load(parity_dir / 'text.pt')
    bank = load_attribute_bank(str(parity_dir / 'attr_bank.pt'))
    num_fg = bank.num_classes
    assert torch.equal(bank.flags, text['attr_flag'].float())
    feats = text['text_features']
    got = text_semantic_enrichment(feats[:num_fg], feats[num_fg:],
                                   bank.centers, KEEP_RATIO)
    ref = text['text_attr'].t()
    assert got.shape == ref.shape
    assert _rel(got, ref) < 1e-5
    # the masking count matters: keeping all clusters is measurably different
    other = text_semantic_enrichment(feats[:num_fg], feats[num_fg:],
                                     bank.centers, 1.0)
    assert _rel(other, ref) > 1e-4


def test_text_head_end_to_end(parity_dir, excel_clip):
    """ExCELTextHead from the CLIP file and the fixture bank file."""
    text = _load(parity_dir / 'text.pt')
    num_fg = text['attr_flag'].shape[0]
    head = ExCELTextHead(
        clip=dict(model_name=None, pretrained=excel_clip['path']),
        class_names=text['prompts'][:num_fg],
        bg_names=text['prompts'][num_fg:],
        templates=[text['template']],
        tse=dict(
            bank_file=str(parity_dir / 'attr_bank.pt'), keep_ratio=KEEP_RATIO))
    assert head.num_fg == num_fg
    assert _rel(head.plain_embeds, text['text_features']) < 1e-5
    assert _rel(head(), text['text_attr'].t()) < 1e-5
    with pytest.raises(ValueError, match='classes but the model has'):
        ExCELTextHead(
            clip=dict(model_name=None, pretrained=excel_clip['path']),
            class_names=text['prompts'][:num_fg - 1],
            bg_names=text['prompts'][num_fg:],
            templates=[text['template']],
            tse=dict(bank_file=str(parity_dir / 'attr_bank.pt')))


def test_clip_es_names_and_tokens(clip_es):
    text, tok = clip_es['text'], clip_es['tok']
    assert text['fg_names'] == list(CLASS_NAME_SETS['voc_clip_es'])
    assert text['bg_names'] == list(BACKGROUND_SETS['voc'])
    assert text['coco_fg_names'] == list(CLASS_NAME_SETS['coco_clip_es'])
    assert text['coco_bg_names'] == list(BACKGROUND_SETS['coco'])
    assert text['class_names'] == list(CLASS_NAME_SETS['voc'])
    fg_prompts = [text['template'].format(n) for n in text['fg_names']]
    bg_prompts = [text['template'].format(n) for n in text['bg_names']]
    assert fg_prompts == text['fg_prompts']
    assert bg_prompts == text['bg_prompts']
    assert torch.equal(
        tok(fg_prompts).to(text['fg_tokens'].dtype), text['fg_tokens'])
    assert torch.equal(
        tok(bg_prompts).to(text['bg_tokens'].dtype), text['bg_tokens'])


@pytest.mark.parametrize('names,feats', [
    ('fg_names', 'fg_text_features'),
    ('bg_names', 'bg_text_features'),
    ('coco_fg_names', 'coco_fg_text_features'),
    ('coco_bg_names', 'coco_bg_text_features'),
])
def test_clip_es_text_features(clip_es, names, feats):
    text = clip_es['text']
    got = encode_class_texts(clip_es['model'], clip_es['tok'], text[names],
                             [text['template']])
    assert got.shape == text[feats].shape
    assert _rel(got, text[feats]) < 1e-5


# --------------------------------------------------------------- clustering
def _synthetic_descriptions(path, class_order, per_class):
    """``per_class`` attribute sentences per fixture class (the official
    description file is not shipped)."""
    attrs = [
        'it is large.', 'it is small.', 'it has a round shape.',
        'it has sharp edges.', 'it is often red.', 'it is often blue.',
        'it has a smooth surface.', 'it stands on the ground.',
        'it is seen outdoors.', 'it is seen indoors.'
    ]
    data = {
        c: [
            f'a clean origami {c}. {attrs[i % len(attrs)]} ({i})'
            for i in range(per_class)
        ]
        for c in class_order
    }
    with open(path, 'w') as f:
        json.dump(data, f)
    return str(path)


def test_clustering_shape_determinism_coverage(parity_dir, excel_clip,
                                               tmp_path):
    fixture = _load(parity_dir / 'attr_bank.pt')
    m = int(fixture['centers'].shape[1])
    classes = list(fixture['class_order'])
    per_class = -(-2 * m // len(classes))  # about 2 descriptions per cluster
    desc = _synthetic_descriptions(tmp_path / 'desc.json', classes, per_class)
    kw = dict(n_clusters=m, seed=0, n_init=10)
    a = build_attribute_bank(excel_clip['model'], excel_clip['tok'], desc,
                             **kw)
    b = build_attribute_bank(excel_clip['model'], excel_clip['tok'], desc,
                             **kw)
    e = fixture['centers'].shape[0]
    assert a.centers.shape == (e, m)
    assert a.flags.shape == fixture['flags'].shape
    assert torch.equal(a.centers, b.centers) and torch.equal(a.flags, b.flags)
    # every class owns at least one cluster; every cluster has a member
    assert (a.flags.sum(1) >= 1).all()
    assert (a.flags.sum(0) >= 1).all()
    # centres are means of unit vectors, not re-normalised
    norms = a.centers.norm(dim=0)
    assert (norms <= 1 + 1e-5).all() and (norms < 1 - 1e-4).any()

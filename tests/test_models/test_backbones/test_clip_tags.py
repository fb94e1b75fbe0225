# Copyright (c) mmseg-excel contributors. All rights reserved.
"""OpenAI weights given by tag build QuickGELU (issue: open_clip's plain
``ViT-B-16`` config has exact GELU and only warns about the mismatch).

The download is stubbed: ``open_clip.factory.download_pretrained`` returns a
placeholder path and ``load_checkpoint`` records the call without reading a
file, so the architecture open_clip builds for each shipped config's tag is
checked without the 600 MB weights.
"""
import glob
import os.path as osp
import warnings

import pytest
from mmengine.config import Config

from mmseg_excel.utils.clip_weights import load_clip, tag_needs_quick_gelu

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))


@pytest.fixture
def stub_download(monkeypatch):
    import open_clip.factory as factory
    calls = []

    def fake_download(cfg, cache_dir=None, **kw):
        calls.append(('download', cfg.get('url') or cfg.get('hf_hub')))
        return '/nonexistent/stub-weights.pt'

    def fake_load_checkpoint(model, path, *a, **kw):
        calls.append(('load', path))
        return {}

    monkeypatch.setattr(factory, 'download_pretrained', fake_download)
    monkeypatch.setattr(factory, 'load_checkpoint', fake_load_checkpoint)
    return calls


def _gelu_types(model) -> set:
    blocks = list(model.visual.transformer.resblocks) + list(
        model.transformer.resblocks)
    return {type(b.mlp.gelu) for b in blocks}


def _is_tag(pretrained) -> bool:
    return (isinstance(pretrained, str) and '/' not in pretrained
            and not osp.splitext(pretrained)[1])


def _clip_sources(node, found):
    """Every dict of a config that names a CLIP weight source."""
    if isinstance(node, dict):
        if 'model_name' in node and 'pretrained' in node:
            found.append(dict(node))
        for v in node.values():
            _clip_sources(v, found)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _clip_sources(v, found)
    return found


def _shipped_tag_configs():
    out = []
    for path in sorted(glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))):
        if '_base_' in path:
            continue
        cfg = Config.fromfile(path)
        srcs = [s for s in _clip_sources(cfg.to_dict().get('model', {}), [])
                if _is_tag(s['pretrained'])]
        if srcs:
            out.append((osp.relpath(path, ROOT), srcs))
    return out


TAG_CONFIGS = _shipped_tag_configs()


def test_tag_configs_found():
    names = [p for p, _ in TAG_CONFIGS]
    # ExCEL VOC/COCO/training-free and CLIP-ES VOC/COCO ask for a tag
    assert sum('excel/' in n for n in names) == 3, names
    assert sum('clip_es/' in n for n in names) == 2, names


def test_openai_tag_is_quickgelu_in_open_clip_registry():
    assert tag_needs_quick_gelu('ViT-B-16', 'openai')
    assert not tag_needs_quick_gelu('ViT-B-16', 'laion2b_s34b_b88k')


@pytest.mark.parametrize('cfg_path,sources', TAG_CONFIGS,
                         ids=[p for p, _ in TAG_CONFIGS])
def test_shipped_config_tag_builds_quickgelu(cfg_path, sources,
                                             stub_download):
    from open_clip.transformer import QuickGELU
    seen = set()
    for src in sources:
        key = tuple(sorted((k, str(v)) for k, v in src.items()))
        if key in seen:
            continue
        seen.add(key)
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # no QuickGELU mismatch warning
            model = load_clip(src['model_name'], src['pretrained'],
                              cache_dir=src.get('cache_dir'))
        assert _gelu_types(model) == {QuickGELU}, (cfg_path, src)
    # the (stubbed) weights were fetched and loaded for each source
    assert [c[0] for c in stub_download].count('load') == len(seen)


def test_backbone_from_config_tag(stub_download):
    """The registry path: the ExCEL backbone built from the shipped base
    config with the tag source."""
    from open_clip.transformer import QuickGELU

    from mmseg_excel.models.backbones import CLIPViTBackbone
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/_base_/models/excel_clip-vit-b16.py'))
    bb = dict(cfg.model.backbone)
    bb.pop('type')
    backbone = CLIPViTBackbone(**bb)
    mods = [m for m in backbone.modules() if isinstance(m, QuickGELU)]
    assert len(mods) >= 12  # every visual block, incl. the surgery blocks


def test_openai_tag_refuses_exact_gelu(stub_download):
    with pytest.raises(ValueError, match='QuickGELU'):
        load_clip('ViT-B-16', 'openai', force_quick_gelu=False)


def test_other_mismatch_is_an_error(stub_download):
    """Any configuration mismatch open_clip only warns about is refused."""
    with pytest.raises(ValueError, match='does not match the weights'):
        load_clip('ViT-B-16', 'laion2b_s34b_b88k', force_quick_gelu=True)


def test_non_quickgelu_tag_keeps_gelu(stub_download):
    import torch.nn as nn
    model = load_clip('ViT-B-16', 'laion2b_s34b_b88k')
    assert _gelu_types(model) == {nn.GELU}


def test_random_weights_build_without_download(stub_download):
    """``pretrained=None`` (``benchmark_train.py --random-weights``): the
    architecture alone, nothing fetched, no activation check to fail."""
    assert not tag_needs_quick_gelu('ViT-B-16', None)
    model = load_clip('ViT-B-16', None)
    assert model.visual.transformer.layers == 12
    assert stub_download == []

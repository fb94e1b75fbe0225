# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Hybrid CLIP ViT: a conv stem declared in the open_clip JSON is built by
every loader (random weights, checkpoint files, the backbone, the toy CLIP)."""
import json

import pytest
import torch

from mmseg_excel.models.backbones import CLIPViTBackbone, ConvStem
from mmseg_excel.utils.clip_weights import (create_clip_model, load_clip,
                                            register_model_config)

TINY = {
    'embed_dim': 32,
    'quick_gelu': True,
    'vision_cfg': {'image_size': 32, 'layers': 2, 'width': 32,
                   'head_width': 16, 'patch_size': 8},
    'text_cfg': {'context_length': 16, 'vocab_size': 49408, 'width': 32,
                 'heads': 2, 'layers': 1},
}


@pytest.fixture(scope='module')
def hybrid(tmp_path_factory):
    """A registered hybrid tiny CLIP and its fp16 checkpoint (the layout
    ``pretrain_clip.py --export`` writes), with trained BN statistics."""
    root = tmp_path_factory.mktemp('hybrid')
    cfg = dict(TINY, conv_stem={'channels': [8, 16]})
    path = root / 'tiny_hybrid.json'
    path.write_text(json.dumps(cfg))
    name = register_model_config(str(path))
    torch.manual_seed(0)
    model = create_clip_model(name)
    model.train()
    with torch.no_grad():  # move the BN running statistics off their init
        for _ in range(3):
            model.visual(torch.randn(4, 3, 32, 32) * 2 + 1)
    model.eval()
    ckpt = root / 'tiny_hybrid.pt'
    torch.save({k: v.half() if v.is_floating_point() else v
                for k, v in model.state_dict().items()}, ckpt)
    return dict(name=name, json=str(path), ckpt=str(ckpt), model=model)


def test_json_stem_is_built_and_open_clip_config_is_clean(hybrid, tmp_path):
    from open_clip.factory import get_model_config
    assert 'conv_stem' not in get_model_config(hybrid['name'])
    stem = hybrid['model'].visual.conv1
    assert isinstance(stem, ConvStem)
    assert stem.stride == (8, 8) and stem.out_channels == 32
    assert stem.weight is stem[-1][3].weight  # last conv of the last stage
    assert len(stem) == 3  # log2(8) stages
    x = torch.randn(2, 3, 32, 32)
    assert stem(x).shape == (2, 32, 4, 4)
    one = ConvStem(32, [8, 16], 8, convs_per_stage=1)
    assert [sum(isinstance(m, torch.nn.Conv2d) for m in st) for st in one] \
        == [1, 1, 1]
    assert one.weight is one[-1][0].weight and one(x).shape == (2, 32, 4, 4)
    # a plain JSON keeps its patch convolution
    plain = tmp_path / 'tiny_plain.json'
    plain.write_text(json.dumps(TINY))
    model = create_clip_model(register_model_config(str(plain)))
    assert type(model.visual.conv1) is torch.nn.Conv2d
    # conv_stem=False: the hybrid JSON's ViT with its plain patch conv
    # (check_image_tower.py --arch vit)
    model = create_clip_model(hybrid['name'], conv_stem=False)
    assert type(model.visual.conv1) is torch.nn.Conv2d
    assert isinstance(create_clip_model(hybrid['name']).visual.conv1,
                      ConvStem)


def test_checkpoint_roundtrip_keeps_bn_state(hybrid):
    """fp16 file → fp32 model: weights and BN running statistics restored,
    the integer batch counters stay integers."""
    loaded = load_clip(hybrid['json'], hybrid['ckpt'])
    ref = hybrid['model'].state_dict()
    got = loaded.state_dict()
    key = 'visual.conv1.0.1.running_var'
    assert not torch.allclose(ref[key], torch.ones_like(ref[key]))
    torch.testing.assert_close(got[key], ref[key].half().float())
    nbt = got['visual.conv1.0.1.num_batches_tracked']
    assert nbt.dtype == torch.long and int(nbt) == 3
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref_model = create_clip_model(hybrid['name'])
        ref_model.load_state_dict(
            {k: v.half().float() if v.is_floating_point() else v
             for k, v in ref.items()})
        torch.testing.assert_close(
            loaded.encode_image(x), ref_model.eval().encode_image(x))


def test_backbone_matches_open_clip_and_keeps_bn_frozen(hybrid):
    bb = CLIPViTBackbone(model_name=hybrid['json'], pretrained=hybrid['ckpt'],
                         svc=None, feature_norm='none')
    clip = load_clip(hybrid['json'], hybrid['ckpt'])
    assert bb.patch_size == (8, 8) and isinstance(bb.conv1, ConvStem)
    x = torch.randn(2, 3, 32, 48)  # non-square: a 4 x 6 token grid
    before = bb.conv1[0][1].running_mean.clone()
    bb.train()  # frozen: stays in eval, BN statistics untouched
    f = bb(x)
    assert not bb.conv1[0][1].training
    torch.testing.assert_close(bb.conv1[0][1].running_mean, before)
    assert f.image_features.shape[1] == 1 + 4 * 6
    with torch.no_grad():
        ref = clip.visual(x[..., :32])
    torch.testing.assert_close(bb(x[..., :32]).image_features[:, 0], ref,
                               atol=1e-5, rtol=1e-5)


def test_bad_stem_specs(tmp_path):
    bad = dict(TINY, conv_stem={'channels': [8]})  # stride 4 vs patch 8
    path = tmp_path / 'bad_stages.json'
    path.write_text(json.dumps(bad))
    name = register_model_config(str(path))
    with pytest.raises(ValueError, match='patch size is 8'):
        create_clip_model(name)
    path = tmp_path / 'bad_keys.json'
    path.write_text(json.dumps(dict(TINY, conv_stem={'width': 3})))
    with pytest.raises(ValueError, match='unknown conv_stem keys'):
        create_clip_model(register_model_config(str(path)))
    path = tmp_path / 'zero_convs.json'
    path.write_text(json.dumps(dict(
        TINY, conv_stem={'channels': [8, 16], 'convs_per_stage': 0})))
    with pytest.raises(ValueError, match='convs_per_stage must be >= 1'):
        create_clip_model(register_model_config(str(path)))
    path = tmp_path / 'not_a_dict.json'
    path.write_text(json.dumps(dict(TINY, conv_stem=[8, 16])))
    with pytest.raises(ValueError, match='must be an object'):
        register_model_config(str(path))


def test_stem_with_an_open_clip_tag_is_refused(hybrid):
    with pytest.raises(ValueError, match='conv stem'):
        create_clip_model(hybrid['name'], pretrained='openai')

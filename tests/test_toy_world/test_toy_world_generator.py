# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Toy World generator: determinism, masks vs labels, vocabulary, layout."""
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TOOLS = Path(__file__).resolve().parents[2] / 'tools' / 'toy_world'
sys.path.insert(0, str(TOOLS))
from _bootstrap import import_toy_world  # noqa: E402

tw = import_toy_world()
import make_dataset  # noqa: E402

TINY = ['--num-train', '8', '--num-val', '4', '--num-test', '4', '--size',
        '64']


def _digests(root: Path) -> dict:
    """Relative path -> sha256 of every file under ``root``."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob('*')) if p.is_file()
    }


@pytest.fixture(scope='module')
def tiny_world(tmp_path_factory) -> Path:
    """The CI tiny world (seed 0)."""
    root = tmp_path_factory.mktemp('toy') / 'a'
    make_dataset.main(['--out', str(root), '--seed', '0'] + TINY)
    return root


def test_same_seed_identical_bytes(tiny_world, tmp_path):
    other = tmp_path / 'b'
    make_dataset.main(['--out', str(other), '--seed', '0'] + TINY)
    a, b = _digests(tiny_world), _digests(other)
    assert len(a) == 16 * 2 + 3 + 3
    assert a == b


def test_other_seed_differs(tiny_world, tmp_path):
    other = tmp_path / 'c'
    make_dataset.main(['--out', str(other), '--seed', '1'] + TINY)
    a, b = _digests(tiny_world), _digests(other)
    assert a.keys() == b.keys()
    imgs = [k for k in a if k.startswith('JPEGImages')]
    assert all(a[k] != b[k] for k in imgs)


def test_test_split_uses_other_seed(tiny_world):
    meta = json.loads((tiny_world / 'meta.json').read_text())
    assert meta['test_seed'] != meta['seed']
    with pytest.raises(ValueError, match='seed different'):
        make_dataset.generate(str(tiny_world / 'x'), 3, 3, 32, dict(test=1))
    # Scenes come from independent streams: no test image equals a train one.
    train = {(tiny_world / 'JPEGImages' / f'train_{i:06d}.png').read_bytes()
             for i in range(8)}
    for i in range(4):
        img = (tiny_world / 'JPEGImages' / f'test_{i:06d}.png').read_bytes()
        assert img not in train


def test_voc_layout(tiny_world):
    palette = tw.toy_palette()
    for split, n in dict(train=8, val=4, test=4).items():
        ids = (tiny_world / 'ImageSets' / 'Segmentation' /
               f'{split}.txt').read_text().split()
        assert ids == [f'{split}_{i:06d}' for i in range(n)]
        for sid in ids:
            img = Image.open(tiny_world / 'JPEGImages' / f'{sid}.png')
            assert img.mode == 'RGB' and img.size == (64, 64)
            seg = Image.open(tiny_world / 'SegmentationClassAug' /
                             f'{sid}.png')
            assert seg.mode == 'P' and seg.size == (64, 64)
            pal = np.asarray(seg.getpalette()[:3 * len(palette)]).reshape(
                -1, 3)
            np.testing.assert_array_equal(pal, palette)
    meta = json.loads((tiny_world / 'meta.json').read_text())
    assert meta['classes'] == ['background'] + list(tw.CLASS_NAMES)
    assert meta['img_suffix'] == '.png'


def test_masks_match_labels_and_captions(tiny_world):
    labels = json.loads((tiny_world / 'cls_labels.json').read_text())
    captions = json.loads((tiny_world / 'captions.json').read_text())
    shape_words = {c.name: c.shape_word for c in tw.TOY_CLASSES}
    assert len(labels) == 16
    for sid, lab in labels.items():
        mask = np.asarray(
            Image.open(tiny_world / 'SegmentationClassAug' / f'{sid}.png'))
        present = sorted(set(np.unique(mask).tolist()) - {0})
        assert present == lab and 1 <= len(lab) <= 3
        assert mask.max() <= len(tw.CLASS_NAMES)
        for cap in captions[sid]:
            words = set(re.findall(r'[a-z-]+', cap))
            for k, name in enumerate(tw.CLASS_NAMES, 1):
                if k in lab:  # named or described by its shape
                    assert name in words or shape_words[name] in words, cap
                else:
                    assert name not in words, cap
            assert 'origami a ' not in cap and 'origami an ' not in cap


def test_render_scene_invariants():
    size = 48
    for i in range(40):
        rng = tw.scene_rng(5, 'check', i)
        scene = tw.render_scene(rng, size)
        assert scene.image.shape == (size, size, 3)
        assert scene.image.dtype == np.uint8
        ids = [o.class_id for o in scene.objects]
        assert len(ids) == len(set(ids))  # distinct classes
        for o in scene.objects:  # areas are the visible pixels
            assert o.area == int((scene.mask == o.class_id).sum()) > 0
        assert set(scene.backgrounds) <= set(tw.BACKGROUNDS)
    with pytest.raises(ValueError, match='>= 16'):
        tw.render_scene(tw.scene_rng(0, 'check', 0), 8)
    with pytest.raises(KeyError, match='unknown stream'):
        tw.scene_rng(0, 'nope', 0)


def test_shapes_closed_form():
    from mmseg_excel.toy_world.shapes import SHAPES
    u = np.asarray([0.0, 0.0, 0.8, 0.0, 0.95])
    v = np.asarray([0.0, -0.95, 0.0, 1.2, 0.95])
    star = SHAPES['star'](u, v)
    assert star.tolist() == [True, True, False, False, False]
    ring = SHAPES['ring'](u, v)
    assert ring.tolist() == [False, True, True, False, False]
    cross = SHAPES['cross'](u, v)
    assert cross.tolist() == [True, True, True, False, False]
    # Every shape covers a sizeable, distinct part of its box.
    g = np.linspace(-1.2, 1.2, 121)
    uu, vv = np.meshgrid(g, g)
    masks = {k: f(uu, vv) for k, f in SHAPES.items()}
    for k, m in masks.items():
        assert 0.1 < m.mean() < 0.7, k
    names = list(masks)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
            assert iou < 0.8, (a, b, iou)


def test_vocabulary():
    import open_clip
    assert len(tw.CLASS_NAMES) >= 8 and len(set(tw.CLASS_NAMES)) == len(
        tw.CLASS_NAMES)
    assert len(tw.BACKGROUNDS) >= 4
    assert not set(tw.CLASS_NAMES) & set(tw.BACKGROUNDS)
    tok = open_clip.get_tokenizer('ViT-B-16').encode
    ids = [tuple(tok(n)) for n in tw.CLASS_NAMES + tw.BACKGROUNDS]
    assert all(len(t) == 1 for t in ids)  # single BPE tokens
    assert len(set(ids)) == len(ids)
    palette = tw.toy_palette()
    assert len({tuple(c) for c in palette}) == len(palette)
    np.testing.assert_array_equal(palette[:3],
                                  [[0, 0, 0], [128, 0, 0], [0, 128, 0]])


def test_descriptions_file():
    path = Path(tw.__file__).parents[1] / 'data' / 'descriptions' / 'toy.json'
    data = json.loads(path.read_text())
    assert data == tw.build_descriptions()
    assert list(data) == list(tw.CLASS_NAMES)
    cfg = json.loads(tw.TOY_CLIP_CONFIG.read_text())
    ctx = cfg['text_cfg']['context_length']
    import open_clip
    enc = open_clip.get_tokenizer('ViT-B-16').encode
    for name, sents in data.items():
        assert len(sents) == 20 and len(set(sents)) == 20
        for s in sents:
            assert s.startswith(f'a clean origami {name}. ')
            assert len(enc(s.lower())) + 2 <= ctx, s  # no truncation


def test_name_only_captions():
    """``name_only_prob=1``: the classes of the scene and template words only;
    ``0`` leaves the default caption stream untouched (same random draws)."""
    allowed = {'a', 'an', 'and', 'clean', 'origami', 'photo', 'of'}
    forms = set()
    for i in range(40):
        rng = tw.scene_rng(3, 'pretrain', i)
        scene = tw.render_scene(rng, 96)
        state = rng.bit_generator.state
        cap = tw.make_caption(rng, scene, name_only_prob=1.0)
        words = re.findall(r'[a-z-]+', cap)
        names = {o.name for o in scene.objects}
        assert set(words) - allowed == names, cap
        forms.add(words[0] + ' ' + words[1])
        rng.bit_generator.state = state
        default = tw.make_caption(rng, scene)
        rng.bit_generator.state = state
        assert tw.make_caption(rng, scene, name_only_prob=0.0) == default
    assert {'a clean', 'a photo'} <= forms and len(forms) >= 3

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""The shipped toy CLIP: checksum, open_clip loading, zero-shot quality."""
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

TOOLS = Path(__file__).resolve().parents[2] / 'tools' / 'toy_world'
sys.path.insert(0, str(TOOLS))
from _bootstrap import import_toy_world  # noqa: E402

tw = import_toy_world()
import eval_clip  # noqa: E402

# The shipped checkpoint scores AUC 0.980, margin 0.32 on the 500-image test
# split (mmseg_excel/data/toy_clip/zero_shot_test.json) and 0.982-0.993 /
# 0.32-0.33 on 64 fresh scenes of three seeds; the v1 model (8x8 patch
# convolution, 800 steps) scored AUC 0.76, a random model 0.5.
MIN_AUC = 0.95
MIN_MARGIN = 0.2


def test_checksum_matches():
    line = Path(str(tw.TOY_CLIP_CHECKPOINT) + '.sha256').read_text().split()
    assert line[1] == tw.TOY_CLIP_CHECKPOINT.name
    assert tw.toy_clip.file_sha256(str(tw.TOY_CLIP_CHECKPOINT)) == line[0]


def test_bad_checksum_rejected(tmp_path):
    ck = tmp_path / 'toy_clip.pt'
    shutil.copyfile(tw.TOY_CLIP_CHECKPOINT, ck)
    (tmp_path / 'toy_clip.pt.sha256').write_text('0' * 64 + '  toy_clip.pt\n')
    with pytest.raises(ValueError, match='does not match'):
        tw.load_toy_clip(str(ck))
    with pytest.raises(FileNotFoundError, match='checkpoint not found'):
        tw.load_toy_clip(str(tmp_path / 'missing.pt'))


@pytest.fixture(scope='module')
def toy_clip():
    torch.set_num_threads(2)
    return tw.load_toy_clip()


def test_loads_with_open_clip(toy_clip):
    import open_clip
    model, tokenizer, name = toy_clip
    cfg = json.loads(tw.TOY_CLIP_CONFIG.read_text())
    assert name == 'toy_clip'
    assert isinstance(model, open_clip.CLIP)
    assert model.visual.patch_size == (cfg['vision_cfg']['patch_size'], ) * 2
    assert tokenizer.context_length == cfg['text_cfg']['context_length']
    sd = torch.load(tw.TOY_CLIP_CHECKPOINT, weights_only=True)
    assert sorted(sd) == sorted(model.state_dict())
    for k, v in model.state_dict().items():  # fp16 file -> fp32 model
        want = sd[k].float() if sd[k].is_floating_point() else sd[k]
        torch.testing.assert_close(v, want, rtol=0, atol=0)
    if 'conv_stem' in cfg:  # the hybrid tower is built, not a patch conv
        from mmseg_excel.models.backbones import ConvStem
        assert isinstance(model.visual.conv1, ConvStem)


def test_zero_shot_separation(toy_clip):
    model, tokenizer, _ = toy_clip
    cfg = json.loads(tw.TOY_CLIP_CONFIG.read_text())
    size = cfg['vision_cfg']['image_size']
    images, targets = [], []
    k = len(tw.CLASS_NAMES)
    for i in range(64):  # fresh scenes: a stream pretraining never used
        scene = tw.render_scene(tw.scene_rng(2024, 'check', i), size)
        images.append(scene.image)
        t = np.zeros(k, np.int64)
        t[[c - 1 for c in scene.labels]] = 1
        targets.append(t)
    text = eval_clip.class_text_features(model, tokenizer, tw.CLASS_NAMES,
                                         eval_clip.DEFAULT_TEMPLATES)
    scores = eval_clip.image_features(model, np.stack(images)) @ text.T
    sep = eval_clip.separation(scores, torch.from_numpy(np.stack(targets)))
    assert sep['auc'] > MIN_AUC, sep
    assert sep['margin'] > MIN_MARGIN, sep


def test_metrics_closed_form():
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.2, 0.6], [0.1, 0.3]])
    targets = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0]])
    # class 0 ranking: +, -, +, -  -> AP = (1 + 2/3) / 2
    # class 1 ranking: +, +, -, -  -> AP = 1
    ap = eval_clip.average_precision(scores, targets)
    torch.testing.assert_close(ap, torch.tensor([250 / 3, 100.]))
    sep = eval_clip.separation(scores, targets)
    # pairs: img0 (0>1 win), img1 (1>0 lose); img2, img3 are skipped
    assert sep['auc'] == pytest.approx(0.5)
    assert sep['all_above'] == pytest.approx(1 / 2)
    assert sep['margin'] == pytest.approx(((0.9 - 0.1) + (0.7 - 0.8)) / 2)


def test_linear_probe_separable_and_chance():
    """The probe recovers labels that are linear in the features and stays
    near chance on unrelated features."""
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(400, 8, generator=g) < 0.3).long()
    x = torch.cat([y.float() * 2 - 1, torch.randn(400, 8, generator=g)], 1)
    x = x + 0.3 * torch.randn(x.shape, generator=g)
    good = eval_clip.linear_probe(x[:300], y[:300], x[300:], y[300:])
    assert good['mAP'] > 99 and good['AUC'] > 0.99, good
    noise = torch.randn(400, 16, generator=g)
    bad = eval_clip.linear_probe(noise[:300], y[:300], noise[300:], y[300:])
    assert bad['mAP'] < 50 and 0.35 < bad['AUC'] < 0.65, bad

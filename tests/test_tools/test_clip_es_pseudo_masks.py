# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/generate_pseudo_labels.py with the CLIP-ES config on a tiny VOC and
the tiny CLIP: PNGs at the original size with {0, present classes + 1, 255},
resuming, and (slow) a baseline segmenter trained on those masks."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmseg_excel.testing.tiny_datasets import make_tiny_voc

ROOT = Path(__file__).resolve().parents[2]
CFG = str(ROOT / 'configs' / 'clip_es' /
          'clip-es_clip-vit-b16_training-free_voc12aug.py')
BASELINE = str(ROOT / 'configs' / 'baselines' /
               'deeplabv3plus_r101-d8_4xb4-20k_voc12aug-clip-es-pl-512x512.py')
ENV = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')


def _generate(data, clip_file, out_dir, cwd):
    args = [
        sys.executable,
        str(ROOT / 'tools' / 'generate_pseudo_labels.py'), CFG, '--out-dir',
        str(out_dir), '--device', 'cpu', '--num-vis', '1', '--show-dir',
        str(Path(cwd) / 'show'), '--cfg-options',
        f'pseudo_label_dataloader.dataset.data_root={data["root"]}',
        'pseudo_label_dataloader.num_workers=0', 'model.clip.model_name=None',
        f'model.clip.pretrained={clip_file}',
        'model.gradcam.num_attn_layers=2', 'model.affinity.num_layers=2'
    ]
    proc = subprocess.run(args, cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def generated(tmp_path_factory, tiny_clip_files):
    tmp = tmp_path_factory.mktemp('clip_es_pl')
    data = make_tiny_voc(str(tmp / 'voc'), num_train=4, num_val=2)
    out_dir = Path(data['root']) / 'pseudo_labels' / 'clip-es'
    log = _generate(data, tiny_clip_files['openai'], out_dir, tmp)
    return data, out_dir, log, tmp


def test_pngs_have_original_size_and_allowed_values(generated):
    data, out_dir, log, tmp = generated
    ids = data['splits']['train_aug']
    assert f'{len(ids)} computed' in log, log[-2000:]
    assert 'pseudo-label mIoU' in log
    seen = set()
    for img_id in ids:
        png = out_dir / f'{img_id}.png'
        assert png.is_file()
        lab = np.asarray(Image.open(png))
        w, h = Image.open(data['img_paths'][img_id]).size
        assert lab.shape == (h, w)
        vals = set(np.unique(lab).tolist())
        # tiny_datasets labels are mask ids (class + 1)
        allowed = {0, 255} | set(data['labels'][img_id])
        assert vals <= allowed, (img_id, vals, allowed)
        seen |= vals
    assert len(seen - {0, 255}) > 0  # some foreground somewhere
    # --show-dir: the picture of the first image, its CAM row titled
    first = ids[0]
    pic = np.asarray(Image.open(tmp / 'show' / f'{first}.png'))
    w, h = Image.open(data['img_paths'][first]).size
    rows = 2 if data['labels'][first] else 1
    assert pic.shape == (rows * (h + 14), 3 * w, 3), pic.shape
    assert not (out_dir / 'vis').exists()


def test_resume_skips_existing_and_recomputes_missing(generated,
                                                      tiny_clip_files):
    data, out_dir, _, tmp = generated
    ids = data['splits']['train_aug']
    before = {i: np.asarray(Image.open(out_dir / f'{i}.png')) for i in ids}
    log = _generate(data, tiny_clip_files['openai'], out_dir, tmp)
    assert f'(0 computed, {len(ids)} already present)' in log, log[-2000:]
    (out_dir / f'{ids[1]}.png').unlink()
    log = _generate(data, tiny_clip_files['openai'], out_dir, tmp)
    assert f'(1 computed, {len(ids) - 1} already present)' in log
    for i in ids:  # deterministic: the recomputed mask is the same
        assert np.array_equal(np.asarray(Image.open(out_dir / f'{i}.png')),
                              before[i])


TINY = """
_base_ = [{base!r}]
model = dict(
    pretrained=None,
    backbone=dict(depth=18, norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(in_channels=512, c1_in_channels=64, channels=16,
                     c1_channels=8, norm_cfg=dict(type='BN', requires_grad=True)),
    auxiliary_head=dict(in_channels=256, channels=8,
                        norm_cfg=dict(type='BN', requires_grad=True)))
crop_size = (64, 64)
data_preprocessor = dict(size=crop_size)
model.update(data_preprocessor=data_preprocessor)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPseudoSegMap', as_gt=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
"""


@pytest.mark.slow
def test_train_baseline_on_clip_es_masks(generated):
    data, out_dir, _, tmp = generated
    cfg_path = tmp / 'tiny_clip_es_baseline.py'
    cfg_path.write_text(TINY.format(base=BASELINE))
    work = tmp / 'work'
    args = [
        sys.executable,
        str(ROOT / 'tools' / 'train.py'),
        str(cfg_path), '--work-dir',
        str(work), '--cfg-options',
        f'train_dataloader.dataset.data_root={data["root"]}',
        f'val_dataloader.dataset.data_root={data["root"]}',
        f'test_dataloader.dataset.data_root={data["root"]}'
    ]
    proc = subprocess.run(args, cwd=tmp, env=ENV, capture_output=True,
                          text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    losses = [float(v) for v in re.findall(r'\bloss: ([-+0-9.eEnaif]+)', out)]
    assert len(losses) == 2 and all(np.isfinite(losses)), out[-3000:]
    assert (work / 'iter_2.pth').is_file()


# --------------------------------------------------------------------------
# tools/analysis_tools/prompt_sharpness.py (CLIP_ES.md §4.1)
def _sharpness_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'prompt_sharpness',
        ROOT / 'tools' / 'analysis_tools' / 'prompt_sharpness.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_sharpness_formula():
    import torch
    ps = _sharpness_module()
    d = torch.float64
    s = [torch.tensor([0.2, 0.6], dtype=d), torch.tensor([0.5], dtype=d),
         torch.tensor([0.1, 0.1, 0.4], dtype=d)]
    var = 0.04 + 0.0 + 0.02  # population variances
    mean = 0.4 + 0.5 + 0.2
    assert abs(ps.sharpness(s) - var / mean) < 1e-9
    with pytest.raises(ValueError):
        ps.sharpness([])


def test_sharpness_scores_are_the_gradcam_softmax(tiny_clip_files, tmp_path):
    """The image-level score equals the Softmax-GradCAM score function."""
    import torch
    from mmseg_excel.models.segmentors.clip_es import CLIPES, clip_es_input
    ps = _sharpness_module()
    model = CLIPES(
        clip=dict(model_name=None, pretrained=tiny_clip_files['openai']),
        gradcam=dict(num_attn_layers=2), affinity=dict(num_layers=2)).eval()
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (40, 56, 3), np.uint8))
    x = clip_es_input(img, 16)
    keys = torch.tensor([2, 7, 14])
    emb = ps.image_embedding(model, x)
    got = ps.gt_scores(emb, keys, model.fg_text, model.bg_text,
                       model.logit_scale)
    txt = torch.cat([model.fg_text[keys], model.bg_text])
    want = model.gradcam(model.visual, [x], [txt], [3],
                         model.logit_scale)[0]['probs'][0, :3]
    assert torch.allclose(got, want.float(), rtol=1e-4, atol=1e-7)


def test_prompt_sharpness_tool_ranks(generated, tiny_clip_files, tmp_path):
    import json
    data = generated[0]
    ps = _sharpness_module()
    out = tmp_path / 'rank.json'
    templates = ['a clean origami {}.', 'a photo of a {}.', 'itap of a {}.']
    ranking = ps.main([
        CFG, '--templates', *templates, '--device', 'cpu', '--out',
        str(out), '--max-images', '1000', '--cfg-options',
        f'pseudo_label_dataloader.dataset.data_root={data["root"]}',
        'pseudo_label_dataloader.num_workers=0', 'model.clip.model_name=None',
        f'model.clip.pretrained={tiny_clip_files["openai"]}',
        'model.gradcam.num_attn_layers=2', 'model.affinity.num_layers=2'
    ])
    assert sorted(r['template'] for r in ranking) == sorted(templates)
    vals = [r['sharpness'] for r in ranking]
    assert vals == sorted(vals) and all(np.isfinite(vals))
    assert len(set(vals)) == len(vals)  # templates change the scores
    saved = json.loads(out.read_text())
    # background-only images are skipped
    n_lab = sum(1 for i in data['splits']['train_aug'] if data['labels'][i])
    assert saved['images'] == n_lab and saved['ranking'] == ranking


def _run_tool(args, cwd):
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'generate_pseudo_labels.py')] +
        args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stdout + proc.stderr


def _opts(data, clip_file):
    return [
        f'pseudo_label_dataloader.dataset.data_root={data["root"]}',
        'pseudo_label_dataloader.num_workers=0', 'model.clip.model_name=None',
        f'model.clip.pretrained={clip_file}',
        'model.gradcam.num_attn_layers=2', 'model.affinity.num_layers=2'
    ]


def test_crf_flag_on_clip_es_config_is_a_clear_error(generated,
                                                     tiny_clip_files):
    """CLIP-ES runs its CRF inside the model; --crf names that."""
    data, _, _, tmp = generated
    rc, log = _run_tool([
        CFG, '--out-dir', str(tmp / 'crf'), '--device', 'cpu', '--crf',
        '--cfg-options', *_opts(data, tiny_clip_files['openai'])
    ], tmp)
    assert rc != 0 and 'inside the model' in log, log[-2000:]


def test_labels_stay_at_original_size_with_a_resize_in_the_pipeline(
        generated, tiny_clip_files):
    """The model returns labels at the original size (labels_are_original):
    the tool must not undo a resize a second time (here a Resize to 48x40
    in the pipeline): every mask has its image's original size."""
    data, out_dir, _, tmp = generated
    child = tmp / 'resized.py'
    child.write_text(
        f"_base_ = ['{CFG}']\n"
        "pseudo_label_dataloader = dict(dataset=dict(pipeline=[\n"
        "    dict(type='LoadImageFromFile', imdecode_backend='pillow'),\n"
        "    dict(type='Resize', scale=(40, 48), keep_ratio=False),\n"
        "    dict(type='LoadImageLevelLabels', keep_mask=True),\n"
        "    dict(type='PackWSSSInputs')]))\n")
    rc, log = _run_tool([
        str(child), '--out-dir', str(tmp / 'resized'), '--device', 'cpu',
        '--num-vis', '0', '--cfg-options',
        *_opts(data, tiny_clip_files['openai'])
    ], tmp)
    assert rc == 0, log[-3000:]
    for img_id in data['splits']['train_aug']:
        lab = np.asarray(Image.open(tmp / 'resized' / f'{img_id}.png'))
        w, h = Image.open(data['img_paths'][img_id]).size
        assert lab.shape == (h, w), (img_id, lab.shape, (h, w))
    # what was written is the model's own full-size label, not a crop of
    # it stretched back (the old second "undo" of the resize)
    import torch
    from mmengine.config import Config, DictAction
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    from mmseg.registry import MODELS
    cfg = Config.fromfile(str(child))
    cfg.merge_from_dict({
        k: DictAction._parse_iterable(v)
        for k, v in (o.split('=', 1)
                     for o in _opts(data, tiny_clip_files['openai']))
    })
    init_default_scope('mmseg')
    model = MODELS.build(cfg.model).eval()
    dl = dict(cfg.pseudo_label_dataloader, persistent_workers=False,
              batch_size=1, sampler=dict(type='DefaultSampler',
                                         shuffle=False))
    varied = 0
    for batch in Runner.build_dataloader(dl):
        sample = batch['data_samples'][0]
        assert tuple(sample.img_shape) != tuple(sample.ori_shape)
        prep = model.data_preprocessor(batch, False)
        with torch.no_grad():
            out = model.generate_pseudo_labels(prep['inputs'],
                                               prep['data_samples'])
        h, w = sample.ori_shape[:2]
        ref = out['pseudo_labels'][0][:h, :w].numpy()
        name = Path(sample.img_path).stem
        written = np.asarray(Image.open(tmp / 'resized' / f'{name}.png'))
        assert np.array_equal(written, ref), name
        varied += len(np.unique(ref)) > 1
    assert varied, 'every label is constant: the check cannot see a crop'

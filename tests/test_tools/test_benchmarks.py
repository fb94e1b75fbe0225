# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/analysis_tools/benchmark_{train,pseudo_labels}.py on the tiny CLIP.

The real configs are used; only what does not fit the 3-block tiny ViT is
overridden (CLIP source, SVC/CAA/GradCAM layer counts, ExCELHead width).
Each script runs in-process (``main(argv)``) for one timed iteration, with
the tiny CLIP's weights and with ``--random-weights`` (the architecture of
``model_name`` without weights, as ViT-B-16 on a machine without the
OpenAI checkpoint). The printed table must name every stage and give
positive times, images/s and the step/CLIP-forward ratios.
"""
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / 'tools' / 'analysis_tools'
TINY_JSON = str(ROOT / 'tests' / 'data' / 'tiny_clip.json')
EXCEL_TRAIN = str(ROOT / 'configs' / 'excel' /
                  'excel_clip-vit-b16_1xb4-30k_voc12aug-320x320.py')
EXCEL_FREE = str(ROOT / 'configs' / 'excel' /
                 'excel_clip-vit-b16_training-free_voc12aug-320x320.py')
CLIP_ES = str(ROOT / 'configs' / 'clip_es' /
              'clip-es_clip-vit-b16_training-free_voc12aug.py')
#: one timed iteration, no warm-up, two 64x64 images (4x4 patches)
BASE = ['--iters', '1', '--warmup', '0', '--batch-size', '2', '--device',
        'cpu']
QUICK = BASE + ['--size', '64', '64']
NUM = r'(\d+\.\d+)'


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _excel_options(weights) -> list:
    """The ExCEL configs on the tiny CLIP (``weights`` None: random)."""
    opts = [
        f'model.backbone.model_name={TINY_JSON}',
        f'model.text_head.clip.model_name={TINY_JSON}',
        'model.backbone.svc.num_blocks=2',
        'model.pseudo_labeler.affinity.num_layers=2',
        'model.decode_head.in_channels=64',
        'model.decode_head.channels=16',
        'model.decode_head.num_heads=2',
        'model.decode_head.num_layers=3',
        'model.decode_head.num_decoder_layers=1',
    ]
    if weights is not None:
        opts += [f'model.backbone.pretrained={weights}',
                 f'model.text_head.clip.pretrained={weights}']
    return opts


def _clip_es_options(weights) -> list:
    opts = [f'model.clip.model_name={TINY_JSON}',
            'model.gradcam.num_attn_layers=2', 'model.affinity.num_layers=2']
    if weights is not None:
        opts.append(f'model.clip.pretrained={weights}')
    return opts


def _row(out: str, name: str) -> list:
    """The numbers of the table row starting with ``name``."""
    for line in out.splitlines():
        if line.startswith(name):
            return [float(x) for x in re.findall(NUM, line[len(name):])]
    raise AssertionError(f'no row {name!r} in:\n{out}')


@pytest.fixture
def weights(request, tiny_clip_files):
    """The tiny CLIP file, or None for --random-weights."""
    return None if request.param == 'random' else \
        tiny_clip_files['open_clip']


def _weight_args(weights) -> list:
    return ['--random-weights'] if weights is None else []


@pytest.mark.parametrize('weights', ['file', 'random'], indirect=True)
def test_benchmark_train(weights, capsys):
    bench = _load('benchmark_train')
    res = bench.main([EXCEL_TRAIN, *QUICK, '--no-tse',
                      *_weight_args(weights), '--cfg-options',
                      *_excel_options(weights)])
    out = capsys.readouterr().out
    assert 'ETA' in out  # mmengine's progress bar over the timed steps
    assert set(res) == {'before LVC', 'after LVC'}
    for stage in ('CLIP forward (+SVC)', 'patch-text maps',
                  'refinement (CAA)', 'PAR', 'decoder', 'losses',
                  'backward + step', 'other', 'step (total)'):
        assert len(_row(out, stage)) == 2, (stage, out)  # both phases
        if stage != 'other':  # (tiny: the printed value may round to 0)
            assert all(res[p][stage] > 0 for p in res), (stage, res)
    assert all(v > 0 for v in _row(out, 'step (total)'))
    # the LVC re-forward runs only after the switch
    assert 'LVC re-forward' not in res['before LVC']
    assert res['after LVC']['LVC re-forward'] > 0
    # the reference forward is timed next to every step of each phase
    assert len(_row(out, 'CLIP forward alone')) == 2
    assert all(v > 0 for v in _row(out, 'CLIP forward alone'))
    # and the plain open_clip forward of the same weights beside it
    assert len(_row(out, 'open_clip forward (plain)')) == 2
    assert all(res[p]['open_clip forward (plain)'] > 0 for p in res)
    for p in res:
        ratio = res[p]['CLIP forward alone'] / res[p][
            'open_clip forward (plain)']
        m = re.search(rf'CLIP forward / plain open_clip forward \({p}\): '
                      rf'{NUM}x', out)
        assert m and float(m.group(1)) == pytest.approx(ratio, abs=0.006)
    for phase, target in (('before LVC', 1.5), ('after LVC', 2.0)):
        m = re.search(rf'step / CLIP forward \({phase}\): {NUM}x '
                      rf'\(target <= {target}x.*per iteration: (.*)\)', out)
        assert m and float(m.group(1)) > 0, out
        ratio = res[phase]['step (total)'] / res[phase]['CLIP forward alone']
        assert float(m.group(1)) == pytest.approx(ratio, abs=0.006)
        assert len(m.group(2).split(', ')) == len(res[phase]['ratios']) == 1
    assert re.search(r'peak memory \(after LVC\): \d+ MiB', out)


@pytest.mark.parametrize('weights', ['file', 'random'], indirect=True)
def test_benchmark_train_amp(weights, capsys):
    bench = _load('benchmark_train')
    bench.main([EXCEL_TRAIN, *QUICK, '--no-tse', '--amp',
                *_weight_args(weights), '--cfg-options',
                *_excel_options(weights)])
    out = capsys.readouterr().out
    assert 'amp True' in out
    assert _row(out, 'step (total)')[0] > 0


def test_benchmark_train_reference_is_fp32_under_amp():
    """The step runs the frozen CLIP in fp32 under --amp, so the reference
    forward must too (a bf16 reference made --amp ratios look 2x worse)."""
    import torch
    bench = _load('benchmark_train')
    seen = []

    class _Model:
        def backbone(self, imgs):
            seen.append(torch.is_autocast_enabled(imgs.device.type))

    bench.clip_forward(_Model(), torch.zeros(1, 3, 4, 4), True)
    with bench.amp_context(torch.device('cpu'), True):
        seen.append(torch.is_autocast_enabled('cpu'))
    assert seen == [False, True]


def _check_pl_table(out: str, res: dict, stages, batch: int = 2) -> None:
    for stage in list(stages) + ['total']:
        secs, ips = _row(out, stage)
        assert res[stage] > 0 and ips > 0, (stage, out)
    secs, ips = _row(out, 'total')
    assert ips == pytest.approx(batch / secs, rel=0.02)
    assert re.search(r'peak memory: \d+ MiB', out)


@pytest.mark.parametrize('weights', ['file', 'random'], indirect=True)
def test_benchmark_pseudo_labels_excel(weights, capsys):
    pytest.importorskip('pydensecrf')
    bench = _load('benchmark_pseudo_labels')
    res = bench.main([EXCEL_FREE, *QUICK, '--no-tse', '--crf',
                      *_weight_args(weights), '--cfg-options',
                      *_excel_options(weights)])
    out = capsys.readouterr().out
    assert 'model: ExCEL' in out and 'ETA' in out  # progress bar
    _check_pl_table(out, res, ('CLIP forward (+SVC)', 'patch-text maps',
                          'affinity (CAA)', 'PAR', 'CRF'))
    assert 'LVC re-forward' not in res  # training-free: static maps only


@pytest.mark.parametrize('weights', ['file', 'random'], indirect=True)
def test_benchmark_pseudo_labels_clip_es(weights, capsys):
    pytest.importorskip('pydensecrf')
    bench = _load('benchmark_pseudo_labels')
    # 60x70 is not a patch multiple: the model resizes to 64x80 as CLIP-ES
    res = bench.main([CLIP_ES, *BASE, '--size', '60', '70',
                      '--gradcam-per-class',
                      *_weight_args(weights),
                      '--cfg-options', *_clip_es_options(weights)])
    out = capsys.readouterr().out
    assert 'model: CLIPES' in out
    _check_pl_table(out, res, ('CLIP forward (blocks 0..L-2)',
                          'GradCAM (block L-1 fwd + bwd, batched over '
                          'classes)', 'CAA', 'CRF'))
    assert _row(out, 'GradCAM per class (official schedule)')[0] > 0
    assert sum(line.startswith('CRF ') for line in out.splitlines()) == 1
    assert re.search(rf'GradCAM batching speed-up: {NUM}x', out)


WEAKCLIP_VOC = str(ROOT / 'configs' / 'weakclip' /
                   'weakclip_clip-vit-b16_2xb8-20k_voc12aug-excel-pl-512x512.py')
WEAKCLIP_STAGES = ('CLIP image encoder', 'pyramid adapter', 'text encoder',
                   'co-attention + score map', 'decoder (FPN + head)',
                   'CRF (loss)', 'seeding + boundary', 'identity head loss',
                   'backward + step')


@pytest.mark.parametrize('random_weights', [False, True])
def test_benchmark_train_weakclip(random_weights, deep_tiny_clip_files,
                                  capsys):
    """The VOC WeakCLIP config on a 12-block tiny CLIP: every stage of the
    table is timed, the CRF in its worker pool too."""
    bench = _load('benchmark_train')
    clip = deep_tiny_clip_files
    opts = [f'model.backbone.model_name={clip["name"]}',
            f'model.text_encoder.model_name={clip["name"]}',
            'model.seg_loss.crf.num_workers=2']
    if not random_weights:
        opts += [f'model.backbone.pretrained={clip["open_clip"]}',
                 f'model.text_encoder.pretrained={clip["open_clip"]}']
    # the README command's options (--iters, --batch-size) plus a tiny size
    res = bench.main([WEAKCLIP_VOC, '--iters', '1', '--batch-size', '2',
                      '--warmup', '0', '--device', 'cpu', '--size', '64',
                      '64'] +
                     (['--random-weights'] if random_weights else []) +
                     ['--cfg-options', *opts])['WeakCLIP']
    out = capsys.readouterr().out
    assert 'ETA' in out
    for stage in WEAKCLIP_STAGES + ('step (total)', ):
        assert len(_row(out, stage)) == 2, (stage, out)  # seconds, share
        assert res[stage] > 0, (stage, res)
    assert sum(res[s] for s in WEAKCLIP_STAGES) <= res['step (total)']
    assert 'size (64, 64), classes 21' in out
    assert re.search(r'peak memory \(training steps\): \d+ MiB', out)


@pytest.mark.slow
@pytest.mark.parametrize('method', ['excel', 'clip_es'])
def test_benchmark_pseudo_labels_export_scaling(method, capsys):
    """End-to-end export rate against processes x CRF workers (the real
    tool, torchrun for 2 processes) and the COCO projection from it."""
    pytest.importorskip('pydensecrf')
    bench = _load('benchmark_pseudo_labels')
    cfg, opts = ((EXCEL_FREE, _excel_options(None)) if method == 'excel'
                 else (CLIP_ES, _clip_es_options(None)))
    res = bench.main([cfg, '--random-weights', '--no-tse', '--batch-size',
                      '2', '--size', '64', '64', '--num-images', '3',
                      '--processes', '1', '2', '--crf-workers', '0', '2',
                      '--machines', '4', '--device', 'cpu',
                      '--cfg-options', *opts])
    out = capsys.readouterr().out
    rows = res['rows']
    assert [(r[0], r[1]) for r in rows] == [(1, 0), (1, 2), (2, 0), (2, 2)]
    assert all(r[3] == 3 and r[2] > 0 and r[4] > 0 for r in rows), rows
    for p, w, rate, _, _ in rows:
        assert re.search(rf'^\s+{p}\s+{w}\s+{rate:.3f}', out, re.M), out
    best = max(r[2] for r in rows)
    assert res['best_rate'] == best
    hours = (82783 + 40137) / best / 3600
    m = re.search(rf'COCO 2014 train \+ val \(122920 images\) at the best '
                  rf'rate .*: {NUM} h on one machine, {NUM} h on 4; PNGs '
                  rf'~{NUM} GiB', out)
    assert m, out
    assert float(m.group(1)) == pytest.approx(hours, abs=0.06)
    assert float(m.group(2)) == pytest.approx(hours / 4, abs=0.06)

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""README command 1 (``tools/quickstart.sh``) and the toy-CLIP recipe tools
(``pretrain_clip.py``, ``eval_clip.py``) run as printed, on short settings.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


def _run(cmd, env_extra=None, timeout=1200):
    env = dict(os.environ, PYTHONUNBUFFERED='1', **(env_extra or {}))
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.mark.slow
def test_quickstart_runs_end_to_end(tmp_path):
    """``SKIP_SETUP=1 bash tools/quickstart.sh`` on a small world and a
    4-iteration schedule: renders, trains, prints the single-scale and the
    ms + flip + CRF test mIoU."""
    world = tmp_path / 'world'
    out = _run(['bash', 'tools/quickstart.sh'], dict(
        SKIP_SETUP='1',
        DATA=str(world),
        WORK_DIR=str(tmp_path / 'work'),
        DATA_ARGS='--num-train 8 --num-val 2 --num-test 4',
        CFG_OPTIONS=' '.join([
            'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
            'param_scheduler.0.max_iters=4',
            'param_scheduler.0.warmup_iters=1',
            'train_dataloader.batch_size=2',
            'default_hooks.checkpoint.interval=4', 'model.lvc_start_iter=2',
            'model.aff_target_switch_iter=3'
        ])))
    assert (world / 'meta.json').is_file()
    assert 'training wall time' in out
    assert len(re.findall(r'mIoU: [0-9.]+', out)) >= 2, out[-3000:]
    assert 'multi-scale + flip + dense CRF' in out


def test_pretrain_clip_recipe_runs_and_exports(tmp_path):
    """The recipe command of mmseg_excel/data/toy_clip/README.md, 2 steps."""
    export = tmp_path / 'export'
    out = _run([
        PY, 'tools/toy_world/pretrain_clip.py', '--seed', '0', '--steps', '2',
        '--batch-size', '4', '--work-dir',
        str(tmp_path / 'run'), '--export',
        str(export)
    ])
    assert 'exported' in out
    assert (export / 'toy_clip.pt').is_file()
    assert (export / 'toy_clip.json').is_file()
    digest = (export / 'toy_clip.pt.sha256').read_text().split()[0]
    assert len(digest) == 64


def test_eval_clip_writes_metrics(tmp_path):
    """``eval_clip.py --data DIR --out FILE`` with the shipped toy CLIP."""
    world = tmp_path / 'world'
    _run([
        PY, 'tools/toy_world/make_dataset.py', '--out',
        str(world), '--seed', '0', '--num-train', '4', '--num-val', '8',
        '--num-test', '8'
    ])
    out_file = tmp_path / 'zero_shot.json'
    _run([
        PY, 'tools/toy_world/eval_clip.py', '--data',
        str(world), '--out',
        str(out_file), '--linear-probe', '--probe-split', 'val',
        '--checkpoint', 'mmseg_excel/data/toy_clip/toy_clip.pt', '--config',
        'mmseg_excel/data/toy_clip/toy_clip.json'
    ])
    metrics = json.loads(out_file.read_text())
    assert metrics['num_images'] == 8
    probe = metrics['linear_probe']
    assert probe['fit_split'] == 'val'
    assert 0 <= probe['mAP'] <= 100 and 0 <= probe['AUC'] <= 1


def test_pretrain_clip_shipped_recipe_resumes(tmp_path):
    """The recipe of mmseg_excel/data/toy_clip/README.md (hybrid conv-stem
    tower, name-only captions), 2 steps, then resumed to 3; the export loads
    as the hybrid tower."""
    cfg = 'mmseg_excel/data/toy_clip/toy_clip.json'
    export = tmp_path / 'export'
    args = [PY, 'tools/toy_world/pretrain_clip.py', '--model-config', cfg,
            '--seed', '0', '--batch-size', '4', '--lr', '1e-3', '--warmup',
            '100', '--name-only-prob', '0.8', '--work-dir',
            str(tmp_path / 'run'), '--export', str(export)]
    _run(args + ['--steps', '2'])
    out = _run(args + ['--steps', '3'])
    assert 'resumed from' in out and 'at step 2' in out
    sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))
    from _bootstrap import import_toy_world
    from mmseg_excel.models.backbones import ConvStem
    model, _, name = import_toy_world().load_toy_clip(
        str(export / 'toy_clip.pt'), str(export / 'toy_clip.json'))
    assert name == 'toy_clip' and isinstance(model.visual.conv1, ConvStem)
    assert len(model.visual.conv1[0]) == 4  # conv, BN, ReLU, max-pool

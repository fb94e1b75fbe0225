# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Resume continues exactly: the toy ExCEL config trained 6 iterations
straight, and 3 iterations + ``--resume`` to 6, give bit-identical decoder
weights and losses on CPU, with the LVC switch (iteration 2) before and the
affinity-target switch (iteration 4) after the resume point."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / 'configs' / 'toy_world' /
             'excel_toy-clip_1xb8-1k_toy-world-96x96.py')
sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))


def _train(work: Path, world: Path, max_iters: int, resume: bool, cwd):
    opts = [f'{s}_dataloader.dataset.data_root={world}'
            for s in ('train', 'val', 'test')]
    opts += [f'{s}_dataloader.{k}={v}' for s in ('train', 'val', 'test')
             for k, v in (('num_workers', 0), ('persistent_workers', False))]
    opts += [
        'train_dataloader.batch_size=2', f'train_cfg.max_iters={max_iters}',
        'train_cfg.val_interval=100', 'param_scheduler.0.max_iters=6',
        # the first run stands for one interrupted at iteration 3 of the
        # same 6-iteration schedule: pin the scheduler's end (mmengine would
        # default it to this run's max_iters)
        'param_scheduler.0.end=6',
        'param_scheduler.0.warmup_iters=1', 'model.lvc_start_iter=2',
        'model.aff_target_switch_iter=4', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=3', 'custom_hooks.0.vis_interval=0'
    ]
    cmd = [sys.executable, str(ROOT / 'tools' / 'train.py'), CONFIG,
           '--work-dir', str(work)] + (['--resume'] if resume else []) + [
               '--cfg-options', *opts]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONUNBUFFERED='1'),
                          timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _losses(work: Path) -> dict:
    out = {}
    for f in sorted(work.glob('*/vis_data/scalars.json')):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if 'loss' in r:
                out[r['step']] = (r['loss'], r['pl_lvc'], r['pl_aff_pred'])
    return out


def _decoder(path: Path) -> dict:
    sd = torch.load(path, map_location='cpu', weights_only=False)
    return {k: v for k, v in sd['state_dict'].items()
            if k.startswith('decode_head.')}


@pytest.mark.slow
def test_resume_is_bit_identical(tmp_path):
    import make_dataset
    world = tmp_path / 'world'
    make_dataset.main(['--out', str(world), '--seed', '4', '--num-train', '8',
                       '--num-val', '1', '--num-test', '1'])
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    _train(straight, world, 6, False, tmp_path)
    _train(resumed, world, 3, False, tmp_path)
    out = _train(resumed, world, 6, True, tmp_path)
    assert 'resumed' in out and 'iter: 3' in out, out[-3000:]
    a, b = _losses(straight), _losses(resumed)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4, 5, 6]
    assert [a[s][1] for s in sorted(a)] == [0, 0, 1, 1, 1, 1]  # LVC from 2
    assert [a[s][2] for s in sorted(a)] == [0, 0, 0, 0, 1, 1]  # target 4
    for step in range(1, 7):
        assert a[step] == b[step], (step, a[step], b[step])
    wa, wb = _decoder(straight / 'iter_6.pth'), _decoder(resumed /
                                                          'iter_6.pth')
    assert wa.keys() == wb.keys() and wa
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Sharded export: ``bash tools/dist_generate_pseudo_labels.sh CONFIG 2``
(two torchrun processes on gloo) writes the same PNGs and scores the same
metric table (reduced over ranks by mmengine) as one process; the dense CRF
in a worker pool overlapped with the next forward (``--crf-workers 2``)
gives the same masks as the CRF on the calling thread."""
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from PIL import Image

from mmseg_excel.testing.tiny_datasets import make_tiny_voc

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from test_generate_pseudo_labels_excel import CFG, _cfg_options  # noqa: E402

ENV = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1',
           PATH=f'{Path(sys.executable).parent}{os.pathsep}'
           f'{os.environ["PATH"]}')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(cmd: List[str], tmp: Path) -> str:
    proc = subprocess.run(cmd, cwd=tmp, env=dict(ENV, PORT=str(_free_port())),
                          capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _pngs(folder: Path) -> Dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in folder.glob('*.png')}


def _miou(log: str) -> str:
    m = re.search(r'pseudo-label mIoU: ([0-9.]+) \(precision ([0-9.]+), '
                  r'recall ([0-9.]+)', log)
    assert m, log[-3000:]
    return m.group(0)


@pytest.fixture(scope='module')
def world(tmp_path_factory, tiny_clip_files):
    tmp = tmp_path_factory.mktemp('dist_pl')
    data = make_tiny_voc(str(tmp / 'voc'), num_train=5, num_val=1)
    opts = _cfg_options(data, tiny_clip_files['openai'], tmp / 'banks')
    return tmp, opts


@pytest.mark.slow
def test_two_processes_write_and_score_like_one(world):
    if torch.cuda.is_available():
        pytest.skip('the CPU (gloo) path; with CUDA the NCCL path is used')
    tmp, opts = world
    tool = str(ROOT / 'tools' / 'generate_pseudo_labels.py')
    one = _run([sys.executable, tool, CFG, '--out-dir', str(tmp / 'one'),
                '--device', 'cpu', '--num-vis', '0', '--cfg-options', *opts],
               tmp)
    two = _run(['bash', str(ROOT / 'tools' / 'dist_generate_pseudo_labels.sh'),
                CFG, '2', '--out-dir', str(tmp / 'two'), '--device', 'cpu',
                '--num-vis', '0', '--cfg-options', *opts], tmp)
    a, b = _pngs(tmp / 'one'), _pngs(tmp / 'two')
    n = len(a)
    assert n % 2 == 1, 'an odd count: the shards differ in size'
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert 'over 2 processes' in two, two[-3000:]
    assert f'{n} images ({n} computed' in two, two[-3000:]
    # one table, printed by rank 0, from the results of both ranks
    assert two.count('pseudo-label mIoU') == 1, two[-3000:]
    assert _miou(one) == _miou(two)
    # a rerun resumes: every shard finds its PNGs
    again = _run(['bash',
                  str(ROOT / 'tools' / 'dist_generate_pseudo_labels.sh'), CFG,
                  '2', '--out-dir', str(tmp / 'two'), '--device', 'cpu',
                  '--num-vis', '0', '--cfg-options', *opts], tmp)
    assert f'{n} images (0 computed, {n} already present)' in again, again[-2000:]
    assert _miou(again) == _miou(one)


def test_crf_workers_overlap_gives_the_same_masks(world):
    tmp, opts = world
    tool = str(ROOT / 'tools' / 'generate_pseudo_labels.py')
    logs = {}
    for n in (0, 2):
        logs[n] = _run([sys.executable, tool, CFG, '--out-dir',
                        str(tmp / f'crf{n}'), '--device', 'cpu', '--crf',
                        '--crf-workers', str(n), '--batch-size', '2',
                        '--num-vis', '0', '--cfg-options', *opts], tmp)
    a, b = _pngs(tmp / 'crf0'), _pngs(tmp / 'crf2')
    assert len(a) >= 4 and sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert _miou(logs[0]) == _miou(logs[2])

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Bad input during a pseudo-label export loses nothing (README, bad-input
table): a truncated image in the middle of the split stops the export with
an error naming the file, the masks written before it are kept, and after
the file is fixed a rerun computes only the rest; an export killed with
SIGKILL leaves no partial PNG and a rerun completes it. Either way the final
masks equal those of an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from PIL import Image

from mmseg_excel.testing.tiny_datasets import make_tiny_voc

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
from test_generate_pseudo_labels_excel import CFG, _cfg_options  # noqa: E402

TOOL = str(ROOT / 'tools' / 'generate_pseudo_labels.py')
ENV = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
N = 8


def _cmd(out_dir: Path, opts: List[str], extra=()) -> List[str]:
    return [sys.executable, TOOL, CFG, '--out-dir', str(out_dir), '--device',
            'cpu', '--num-vis', '0', '--batch-size', '1', *extra,
            '--cfg-options', *opts]


def _run(cmd: List[str], cwd: Path):
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=900)
    return proc.returncode, proc.stdout + proc.stderr


def _pngs(folder: Path) -> Dict[str, np.ndarray]:
    out = {}
    for p in sorted(folder.iterdir()):
        if p.suffix == '.png':
            with Image.open(p) as im:
                out[p.name] = np.asarray(im)  # decodes the whole file
    return out


@pytest.fixture(scope='module')
def setup(tmp_path_factory, tiny_clip_files):
    tmp = tmp_path_factory.mktemp('export_bad')
    data = make_tiny_voc(str(tmp / 'voc'), num_train=N, num_val=1)
    opts = _cfg_options(data, tiny_clip_files['openai'], tmp / 'banks')
    refs = {}
    for name, extra in (('plain', ()), ('crf', CRF)):
        rc, log = _run(_cmd(tmp / f'reference_{name}', opts, extra), tmp)
        assert rc == 0, log[-3000:]
        refs[extra] = _pngs(tmp / f'reference_{name}')
        assert len(refs[extra]) == N
    return tmp, data, opts, refs


#: the dense CRF in one worker process, overlapped with the next image
CRF = ('--crf', '--crf-workers', '1')


@pytest.mark.parametrize('extra', [(), CRF], ids=['plain', 'crf-worker'])
def test_truncated_image_mid_split_names_it_and_resumes(setup, extra):
    tmp, data, opts, refs = setup
    ref = refs[extra]
    ids = data['splits']['train_aug']
    bad = Path(data['img_paths'][ids[N // 2]])
    good = bad.read_bytes()
    bad.write_bytes(good[:len(good) // 2])  # a truncated JPEG
    out = tmp / f'truncated{len(extra)}'
    try:
        rc, log = _run(_cmd(out, opts, extra), tmp)
    finally:
        bad.write_bytes(good)
    assert rc != 0
    assert str(bad) in log and 'truncated' in log, log[-3000:]
    kept = _pngs(out)
    assert sorted(kept) == sorted(f'{i}.png' for i in ids[:N // 2])
    for name, lab in kept.items():
        np.testing.assert_array_equal(lab, ref[name])
    rc, log = _run(_cmd(out, opts, extra), tmp)
    assert rc == 0, log[-3000:]
    assert f'{N} images ({N - N // 2} computed, {N // 2} already present)' \
        in log, log[-3000:]
    final = _pngs(out)
    assert sorted(final) == sorted(ref)
    for name in ref:
        np.testing.assert_array_equal(final[name], ref[name])


def test_sigkill_midway_leaves_no_partial_png_and_rerun_completes(setup):
    tmp, data, opts, refs = setup
    ref = refs[()]
    out = tmp / 'killed'
    proc = subprocess.Popen(_cmd(out, opts), cwd=tmp, env=ENV,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            if out.is_dir() and any(p.suffix == '.png' and
                                    not p.name.startswith('.')
                                    for p in out.iterdir()):
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, 'finished before the kill'
    done = _pngs(out)
    assert 0 < len([n for n in done if not n.startswith('.')]) < N
    for name, lab in done.items():  # whole files, the reference masks
        if not name.startswith('.'):
            np.testing.assert_array_equal(lab, ref[name])
    # a temp file as a kill during a write leaves it: removed by the rerun
    (out / '.tmp_killed.png').write_bytes(b'\x89PNG\r\n half a file')
    rc, log = _run(_cmd(out, opts), tmp)
    assert rc == 0, log[-3000:]
    assert 'removed 1 unfinished temp file' in log, log[-3000:]
    assert 'already present' in log
    final = _pngs(out)
    assert sorted(final) == sorted(ref)
    for name in ref:
        np.testing.assert_array_equal(final[name], ref[name])

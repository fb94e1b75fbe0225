# Copyright (c) mmseg-excel contributors. All rights reserved.
"""The GPU check's CPU fallback: ``bash tools/analysis_tools/gpu_check.sh
--device cpu --no-install --quick`` runs every check at tiny sizes (the
whole-segmentor parity test on the fixtures when they are present) and
prints the summary table; ``prepare_gpu_check.sh --list`` names the
packages the bundle carries (not those the GPU machine brings)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_cpu_fallback(tmp_path):
    from conftest import parity_available
    parity = parity_available()
    env = dict(os.environ, PY=sys.executable, PYTHONUNBUFFERED='1')
    proc = subprocess.run(
        ['bash', str(ROOT / 'tools' / 'analysis_tools' / 'gpu_check.sh'),
         '--device', 'cpu', '--no-install', '--quick', '--out',
         str(tmp_path / 'out'), '--bundle', str(tmp_path / 'no_bundle')],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    table = out.split('gpu_check summary, device cpu (quick sizes)', 1)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        m = re.match(r'(\S.*?)\s{2,}(pass|FAIL|skipped.*?)\s', line)
        if m:
            rows[m.group(1).strip()] = m.group(2)
    for check in ('benchmark_train', 'benchmark_train --amp',
                  'pseudo labels ExCEL (+CRF)', 'pseudo labels CLIP-ES',
                  'toy ExCEL training'):
        assert rows.get(check) == 'pass', (check, rows, out[-3000:])
    if parity:  # EXCEL_PARITY_DIR: the parity row runs too
        assert rows.get('parity: ExCEL segmentor') == 'pass', rows
    for name in ('benchmark_train.log', 'toy_train.log'):
        assert (tmp_path / 'out' / name).is_file()
    assert re.search(r'benchmark_train\s+pass\s+[0-9.]+ / [0-9.]+\s+\d+',
                     table), table


def test_prepare_gpu_check_lists_only_what_the_gpu_machine_lacks():
    proc = subprocess.run(
        ['bash', str(ROOT / 'tools' / 'analysis_tools' /
                     'prepare_gpu_check.sh'), '--list'],
        env=dict(os.environ, PY=sys.executable), capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.split('==')[0].lower().replace('_', '-')
             for line in proc.stdout.splitlines() if '==' in line
             and not line.startswith('src:')}
    for need in ('mmengine', 'mmsegmentation', 'mmpretrain',
                 'open-clip-torch', 'ftfy', 'regex', 'cython'):
        assert need in names, (need, names)
    for brought in ('torch', 'torchvision', 'numpy', 'scipy', 'scikit-learn',
                    'opencv-python', 'pytest', 'ninja', 'mmcv',
                    'pydensecrf2', 'mmseg-excel'):
        assert brought not in names, brought
    assert re.search(r'^src: mmcv==\S+ pydensecrf2==1\.1$', proc.stdout,
                     re.M), proc.stdout
    # the install part is at least valid bash
    for script in ('gpu_check.sh', 'prepare_gpu_check.sh'):
        assert subprocess.run(['bash', '-n', str(ROOT / 'tools' /
                                                 'analysis_tools' / script)]
                              ).returncode == 0

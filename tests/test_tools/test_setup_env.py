# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/setup_env.sh on an existing environment (the one running these
tests): it reuses what is there, says so, prints the total time, explains
the setuptools pin in one line and shows no pip resolver ERROR."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_setup_reuses_and_reports():
    venv = Path(sys.executable).parent.parent
    if not (venv / 'bin' / 'python').is_file() or sys.prefix == sys.base_prefix:
        pytest.fail(f'the tests must run inside the venv of setup_env.sh, '
                    f'got {sys.executable}')
    env = dict(os.environ, VENV=str(venv))
    proc = subprocess.run(['bash', str(ROOT / 'tools' / 'setup_env.sh')],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1200)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert '[setup_env] ok: mmseg_excel' in out
    assert "ERROR: pip's dependency resolver" not in out, out
    assert 'reused: mmcv' in out and 'reused: torch' in out, out
    assert '[setup_env] total time' in out
    assert sum('setuptools is pinned <70' in line
               for line in out.splitlines()) == 1

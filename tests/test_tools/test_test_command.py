# Copyright (c) mmseg-excel contributors. All rights reserved.
"""The test command works without the parity fixtures, and CI refuses to.

* ``tools/run_tests.sh`` with ``EXCEL_PARITY_DIR`` pointing at an empty
  folder deselects the parity tests, says so in one loud line and passes;
* with ``EXCEL_REQUIRE_PARITY=1`` (what ``.ci/run`` sets) the same run fails;
* ``.ci/run`` stops before its setup when the fixtures are missing.
"""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# one parity test and one that needs no fixture
SELECTION = [
    'tests/test_parity/test_parity_protocol.py::'
    'test_flip_fusion_from_stored_lvc_views',
    'tests/test_configs/test_all_configs.py::test_configs_found',
]


def _run(cmd, env_extra, timeout=600):
    env = dict(os.environ, **env_extra)
    env.pop('PYTEST_ADDOPTS', None)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def test_without_fixtures_parity_is_deselected_loudly(tmp_path):
    rc, out = _run(['bash', 'tools/run_tests.sh', *SELECTION,
                    '-p', 'no:cacheprovider'],
                   dict(EXCEL_PARITY_DIR=str(tmp_path),
                        EXCEL_REQUIRE_PARITY='0'))
    assert rc == 0, out[-3000:]
    assert 'PARITY TESTS DESELECTED: 1 tests' in out, out[-3000:]
    assert '1 passed, 1 deselected' in out, out[-3000:]


def test_required_parity_fails_without_fixtures(tmp_path):
    rc, out = _run(['bash', 'tools/run_tests.sh', *SELECTION,
                    '-p', 'no:cacheprovider'],
                   dict(EXCEL_PARITY_DIR=str(tmp_path),
                        EXCEL_REQUIRE_PARITY='1'))
    assert rc != 0 and 'parity fixtures are missing' in out, out[-3000:]


def test_required_parity_fails_when_a_parity_test_is_not_run():
    rc, out = _run(['bash', 'tools/run_tests.sh', *SELECTION, '-m',
                    'not parity', '-p', 'no:cacheprovider'],
                   dict(EXCEL_REQUIRE_PARITY='1'))
    assert rc != 0 and 'parity tests not run' in out, out[-3000:]


def test_ci_run_fails_before_setup_without_fixtures(tmp_path):
    rc, out = _run(['bash', '.ci/run'], dict(EXCEL_PARITY_DIR=str(tmp_path)),
                   timeout=60)
    assert rc != 0 and 'parity fixtures missing' in out, out[-2000:]
    assert '[setup_env]' not in out, out[-2000:]  # failed before setup

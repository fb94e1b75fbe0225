# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Every command printed in a README, a docs page or a config comment is
exercised by a test.

A printed command is a line of a Markdown code block, or a config comment,
that runs one of the repository's scripts (``python tools/…``,
``bash tools/…``, ``.venv/bin/python tools/…``; continuation lines joined).
It counts as exercised when some test file under ``tests/`` names the
script AND every option the printed command uses (``--crf``,
``--ann-file`` …): the tests run the scripts with those options on the toy
world or on tiny VOC/COCO-layout data (weights and data roots overridden).
Commands that need a GPU or real data are listed in the docs as such and
are still checked here for their script and options.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = re.compile(
    r'(?:^|\s)(?:\S*python\S*|bash)\s+((?:tools|\.ci)/[\w/.-]+\.(?:py|sh)|'
    r'\.ci/run)')
OPTION = re.compile(r'(?<![\w-])(--[a-z][a-z0-9-]*)')


def _doc_files():
    files = [ROOT / 'README.md']
    for pattern in ('docs/**/*.md', 'configs/**/*.md', 'tools/**/*.md',
                    'mmseg_excel/data/**/*.md'):
        files += sorted(ROOT.glob(pattern))
    return [f for f in files if f.is_file()]


def _md_commands(path: Path):
    out, block, buf = [], False, ''
    for line in path.read_text().splitlines():
        if line.strip().startswith('```'):
            block = not block
            continue
        if not block:
            continue
        text = line.split(' #')[0].rstrip()
        buf = (buf + ' ' + text.strip()) if buf else text.strip()
        if buf.endswith('\\'):
            buf = buf[:-1]
            continue
        if SCRIPT.search(buf):
            out.append(buf)
        buf = ''
    return out


def _config_commands(path: Path):
    out, buf = [], ''
    for line in path.read_text().splitlines():
        if not line.lstrip().startswith('#'):
            buf = ''
            continue
        text = line.lstrip()[1:].strip()
        buf = (buf + ' ' + text) if buf else text
        if buf.endswith('\\'):
            buf = buf[:-1]
            continue
        if SCRIPT.search(buf):
            out.append(buf)
        buf = ''
    return out


def printed_commands():
    cmds = []
    for f in _doc_files():
        cmds += [(f, c) for c in _md_commands(f)]
    for f in sorted(ROOT.glob('configs/**/*.py')):
        cmds += [(f, c) for c in _config_commands(f)]
    return cmds


def _test_sources():
    return {
        p: p.read_text()
        for p in (ROOT / 'tests').rglob('*.py')
        if p.name != Path(__file__).name
    }


COMMANDS = printed_commands()
#: scripts whose printed commands need GPUs or a cluster, listed here
#: explicitly instead of being silently skipped (dist_train.sh runs on CPU
#: with gloo and slurm_train.sh as a dry run with a stand-in ``srun``, both
#: tested: tests/test_tools/test_dist_train_cpu.py)
NEEDS_GPUS = {
    'tools/dist_test.sh': 'multi-GPU testing (nccl)',
    'tools/slurm_test.sh': 'a slurm cluster with GPUs',
}


def test_commands_found():
    scripts = {SCRIPT.search(c).group(1) for _, c in COMMANDS}
    assert 'tools/run_tests.sh' in scripts and \
        'tools/generate_pseudo_labels.py' in scripts, scripts


@pytest.mark.parametrize(
    'where,command', COMMANDS,
    ids=[f'{f.relative_to(ROOT)}:{c[:60]}' for f, c in COMMANDS])
def test_printed_command_is_exercised_by_a_test(where, command):
    sources = _test_sources()
    for script in SCRIPT.findall(command):
        if script in NEEDS_GPUS:
            assert 'GPU' in where.read_text(), (
                f'{where.relative_to(ROOT)} prints `{command}` ({script}: '
                f'{NEEDS_GPUS[script]}) without saying it needs GPUs')
            continue
        name, stem = Path(script).name, Path(script).stem
        # a test runs the script by path, or calls its main() in-process
        users = [
            p for p, s in sources.items() if name in s or re.search(
                rf'import {stem}\b|\b{stem}\.main\(', s)
        ]
        assert users, (f'{where.relative_to(ROOT)} prints `{command}` but '
                       f'no test runs {script}')
        opts = set(OPTION.findall(command))
        missing = [
            o for o in sorted(opts)
            if not any(o in sources[p] for p in users)
        ]
        assert not missing, (
            f'{where.relative_to(ROOT)} prints `{command}` but no test '
            f'running {name} uses {missing}')

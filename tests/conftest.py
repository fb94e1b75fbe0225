# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Shared pytest fixtures: parity folders and a tiny open_clip CLIP."""
import json
import os
import os.path as osp
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_CLIP_NAME = 'mmseg-excel-tiny-vit'


def parity_root() -> Path:
    """Folder of the official ExCEL golden outputs (``EXCEL_PARITY_DIR``)."""
    return Path(
        os.environ.get('EXCEL_PARITY_DIR',
                       str(REPO_ROOT.parent / 'shared' / 'parity')))


def parity_available() -> bool:
    """Whether the parity fixtures are present."""
    return (parity_root() / 'inputs.pt').is_file()


def parity_required() -> bool:
    """``EXCEL_REQUIRE_PARITY=1`` (set by ``.ci/run``): missing fixtures or
    a parity test that does not run fail the session."""
    return os.environ.get('EXCEL_REQUIRE_PARITY', '0') not in ('', '0')


_PARITY_STATE = dict(deselected=0, not_passed=[])


def pytest_collection_modifyitems(session, config, items):
    """Without fixtures, deselect the parity tests (and say so loudly); with
    ``EXCEL_REQUIRE_PARITY=1`` missing fixtures are an error instead."""
    parity = [it for it in items if it.get_closest_marker('parity')]
    if not parity or parity_available():
        return
    if parity_required():
        raise pytest.UsageError(
            f'EXCEL_REQUIRE_PARITY=1 but the parity fixtures are missing in '
            f'{parity_root()} (set EXCEL_PARITY_DIR)')
    items[:] = [it for it in items if not it.get_closest_marker('parity')]
    config.hook.pytest_deselected(items=parity)
    _PARITY_STATE['deselected'] = len(parity)
    tr = config.pluginmanager.get_plugin('terminalreporter')
    if tr is not None:
        tr.write_line(_parity_line(), yellow=True, bold=True)


def _parity_line() -> str:
    return (f'!!! PARITY TESTS DESELECTED: {_PARITY_STATE["deselected"]} '
            f'tests need the official golden outputs, not found in '
            f'{parity_root()} (set EXCEL_PARITY_DIR) !!!')


def pytest_runtest_logreport(report):
    """Record parity tests that were skipped or failed (CI requires all)."""
    if 'parity' in report.keywords and (report.skipped or (
            report.when == 'call' and not report.passed)):
        _PARITY_STATE['not_passed'].append(report.nodeid)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Repeat the deselection line at the end, where it is read."""
    if _PARITY_STATE['deselected']:
        terminalreporter.write_line(_parity_line(), yellow=True, bold=True)


def pytest_sessionfinish(session, exitstatus):
    """Under ``EXCEL_REQUIRE_PARITY=1`` every parity test must run and
    pass, and at least one must have been collected."""
    if not parity_required():
        return
    ran = any(it.get_closest_marker('parity') for it in session.items)
    skipped = [n for n in _PARITY_STATE['not_passed']]
    if (not ran or skipped) and session.exitstatus == 0:
        print(f'\nEXCEL_REQUIRE_PARITY=1: parity tests not run or not '
              f'passed: {skipped or "none collected"}')
        session.exitstatus = 1


@pytest.fixture(scope='session')
def test_device() -> str:
    """Device of the tests that can run on an accelerator (the whole-model
    parity tests): ``MMSEG_EXCEL_TEST_DEVICE`` (``tools/analysis_tools/
    gpu_check.sh`` sets ``cuda``), default ``cpu``. On CUDA, TF32 is off so
    the fp32 tolerances keep their meaning."""
    import os
    import torch
    device = os.environ.get('MMSEG_EXCEL_TEST_DEVICE', 'cpu')
    if device.startswith('cuda'):
        if not torch.cuda.is_available():
            raise RuntimeError(f'MMSEG_EXCEL_TEST_DEVICE={device} but CUDA '
                               'is not available')
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return device


@pytest.fixture(scope='session')
def parity_dir() -> Path:
    """ExCEL fixture folder; a missing folder is an error, not a skip
    (parity tests are deselected as a whole when it is absent)."""
    root = parity_root()
    if not (root / 'inputs.pt').is_file():
        raise FileNotFoundError(
            f'parity fixtures not found in {root}: set EXCEL_PARITY_DIR')
    return root


@pytest.fixture(scope='session')
def clip_es_parity_dir(parity_dir) -> Path:
    """CLIP-ES fixture folder ``$EXCEL_PARITY_DIR/clip_es``."""
    root = parity_dir / 'clip_es'
    if not (root / 'inputs.pt').is_file():
        raise FileNotFoundError(f'CLIP-ES parity fixtures not found in {root}')
    return root


def register_tiny_clip() -> str:
    """Register the tiny open_clip architecture of ``tests/data``."""
    import open_clip
    with open(REPO_ROOT / 'tests' / 'data' / 'tiny_clip.json') as f:
        cfg = json.load(f)
    open_clip.add_model_config  # noqa: B018  (keep attribute check explicit)
    from open_clip.factory import _MODEL_CONFIGS
    _MODEL_CONFIGS[TINY_CLIP_NAME] = cfg
    return TINY_CLIP_NAME


@pytest.fixture(scope='session')
def tiny_clip_name() -> str:
    """Name of a tiny open_clip ViT registered for the tests."""
    return register_tiny_clip()


@pytest.fixture(scope='session')
def tiny_clip_files(tmp_path_factory, tiny_clip_name) -> dict:
    """A randomly initialised tiny CLIP saved in open_clip and OpenAI layouts.

    Returns a dict with ``name``, ``open_clip`` (open_clip state dict file)
    and ``openai`` (OpenAI-layout state dict file, as ``ViT-B-16.pt`` holds).
    """
    import torch
    import open_clip
    torch.manual_seed(0)
    model = open_clip.create_model(tiny_clip_name, pretrained=None)
    root = tmp_path_factory.mktemp('tiny_clip')
    oc_path = osp.join(root, 'tiny_open_clip.pt')
    torch.save(model.state_dict(), oc_path)
    # OpenAI layout: same key names as open_clip's CLIP for ViT towers.
    oa_path = osp.join(root, 'tiny_openai.pt')
    torch.save({k: v.half() for k, v in model.state_dict().items()}, oa_path)
    return dict(name=tiny_clip_name, open_clip=oc_path, openai=oa_path)


DEEP_TINY_CLIP_NAME = 'mmseg-excel-tiny-vit-12'


@pytest.fixture(scope='session')
def deep_tiny_clip_files(tmp_path_factory) -> dict:
    """A random 12-block tiny CLIP (width 64) in the open_clip layout, so
    that the layer counts of the ViT-B/16 configs hold without any fixture:
    ``name``, ``open_clip`` (state-dict file) and ``width``."""
    import torch
    import open_clip
    from open_clip.factory import _MODEL_CONFIGS
    with open(REPO_ROOT / 'tests' / 'data' / 'tiny_clip.json') as f:
        cfg = json.load(f)
    cfg['vision_cfg']['layers'] = 12
    _MODEL_CONFIGS[DEEP_TINY_CLIP_NAME] = cfg
    torch.manual_seed(0)
    model = open_clip.create_model(DEEP_TINY_CLIP_NAME, pretrained=None)
    path = osp.join(tmp_path_factory.mktemp('deep_tiny_clip'), 'clip.pt')
    torch.save(model.state_dict(), path)
    return dict(
        name=DEEP_TINY_CLIP_NAME,
        open_clip=path,
        width=cfg['vision_cfg']['width'])

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


@pytest.fixture(scope='session')
def parity_dir() -> Path:
    """ExCEL fixture folder; a missing folder is an error, not a skip."""
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

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Every config under configs/ loads and its parts build and run on CPU.

* method configs (with a ``model``): the model builds with offline weights
  and runs a forward on a small image; its class count equals the dataset's
  (``decode_head.num_classes`` vs ``metainfo['classes']``), and an ExCEL /
  CLIP-ES text head has one foreground class fewer;
* dataset bases: every transform of every pipeline builds from the registry;
* schedule bases: optimiser wrapper and parameter schedulers build on a
  model with a backbone and a ``decode_head`` and step;
* every config pulls the plugin in (``custom_imports``).

Weights that cannot be downloaded here are swapped for offline stand-ins:
``pretrained`` URLs / ``init_cfg=dict(type='Pretrained')`` are dropped, and a
CLIP source (a dict holding ``model_name`` and ``pretrained``) is pointed at a
random 12-block test CLIP (``deep_tiny_clip_files``: 12 blocks so that the
layer counts of the real configs — SVC 5, CAA 6 / 8, head 12 — hold). No
parity fixture is needed.
"""
import os.path as osp
from glob import glob
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.registry import init_default_scope

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(
    p for p in glob(str(ROOT / 'configs' / '**' / '*.py'), recursive=True))


def _shipped(path) -> bool:
    """A weight file the repository ships (the toy CLIP): used as is."""
    return isinstance(path, str) and (ROOT / path).is_file()


def _offline(node, clip):
    """Recursively replace weight sources by offline ones (in place);
    ``clip=None`` keeps the CLIP source (it is shipped)."""
    if isinstance(node, (dict, ConfigDict)):
        if 'tse' in node:
            # the attribute bank is built and tested in test_models/test_text
            # (parity included); here only the wiring of the model is checked
            node['tse'] = None
        if node.get('type') == 'ExCELHead' and clip is not None:
            node['in_channels'] = clip['width']
        if 'model_name' in node and 'pretrained' in node:
            if clip is None:
                for key in ('model_name', 'pretrained'):
                    if _shipped(node[key]):
                        node[key] = str(ROOT / node[key])
            else:
                node['model_name'] = clip['name']
                node['pretrained'] = clip['open_clip']
        elif 'pretrained' in node and isinstance(node['pretrained'], str):
            node['pretrained'] = None
        init_cfg = node.get('init_cfg')
        if isinstance(init_cfg, (dict, ConfigDict)) and \
                init_cfg.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for value in node.values():
            _offline(value, clip)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _offline(value, clip)


def _dataset_classes(cfg):
    """Class names of the config's training (or test) dataset, or None."""
    from mmseg.registry import DATASETS
    for key in ('train_dataloader', 'test_dataloader', 'val_dataloader'):
        dl = cfg.get(key)
        if not dl or not dl.get('dataset'):
            continue
        ds = dl['dataset']
        meta = ds.get('metainfo')
        if meta and meta.get('classes'):
            return list(meta['classes'])
        cls = DATASETS.get(ds['type'])
        if cls is not None and 'classes' in getattr(cls, 'METAINFO', {}):
            return list(cls.METAINFO['classes'])
    return None


def test_configs_found():
    assert any(p.endswith('default_runtime.py') for p in CONFIGS)
    assert any('/_base_/schedules/' in p for p in CONFIGS)
    assert any('/_base_/datasets/' in p for p in CONFIGS)


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_loads_and_builds(path, deep_tiny_clip_files):
    cfg = Config.fromfile(path)
    # every config pulls the plugin in (directly or through _base_)
    imports = cfg.get('custom_imports', {}).get('imports', [])
    if '_base_' not in path or path.endswith('default_runtime.py'):
        assert 'mmseg_excel' in imports, f'{path} lacks custom_imports'
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401
    from mmseg.registry import MODELS, TRANSFORMS
    checked = []
    for key, value in cfg.items():
        if key.endswith('pipeline') and isinstance(value, list):
            for t in value:
                assert TRANSFORMS.build(t) is not None, (key, t)
            checked.append(key)
    if 'param_scheduler' in cfg and cfg.get('optim_wrapper'):
        _check_schedule(cfg)
        checked.append('schedule')
    if 'model' in cfg:
        _check_model(cfg, deep_tiny_clip_files, MODELS)
        checked.append('model')
    if '/_base_/' in path and not path.endswith('default_runtime.py'):
        # a base file exists to provide one of these
        assert checked, f'{path}: nothing buildable checked'


def _check_schedule(cfg):
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS

    class Net(nn.Module):

        def __init__(self):
            super().__init__()
            self.backbone = nn.Linear(2, 2)
            self.decode_head = nn.Linear(2, 2)

    wrapper = build_optim_wrapper(Net(), cfg.optim_wrapper.copy())
    scheds = [
        PARAM_SCHEDULERS.build(
            dict(s, optimizer=wrapper) if 'optimizer' not in s else s)
        for s in cfg.param_scheduler
    ]
    for _ in range(3):
        wrapper.step()
        for s in scheds:
            s.step()
    lrs = [g['lr'] for g in wrapper.optimizer.param_groups]
    assert all(lr >= 0 and lr == lr for lr in lrs), lrs


def _check_model(cfg, clip, MODELS):
    model_cfg = cfg.model.copy()
    if _shipped(model_cfg.get('backbone', {}).get('pretrained')):
        clip = None  # the shipped toy CLIP is offline already
    _offline(model_cfg, clip)
    model = MODELS.build(model_cfg)
    assert sum(p.numel() for p in model.parameters()) > 0
    classes = _dataset_classes(cfg)
    head = getattr(model, 'decode_head', None)
    num_classes = getattr(model, 'num_classes', None) or getattr(
        head, 'num_classes', None)
    if classes is not None and num_classes is not None:
        assert num_classes == len(classes), (num_classes, len(classes))
    text_head = getattr(model, 'text_head', None)
    if text_head is not None and hasattr(text_head, 'num_fg') and \
            classes is not None:
        assert text_head.num_fg == len(classes) - 1
    model.eval()
    with torch.no_grad():
        if hasattr(model, '_forward') and type(model).__name__ != 'CLIPES':
            out = model._forward(torch.randn(1, 3, 64, 64))
            first = out[0] if isinstance(out, (tuple, list)) else out
            assert torch.isfinite(first).all()
            if num_classes is not None and first.dim() == 4:
                assert first.shape[1] == num_classes, tuple(first.shape)

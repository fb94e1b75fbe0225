# Copyright (c) mmseg-excel contributors. All rights reserved.
"""One resolver for CLIP weight sources (docs/methods/excel.md §1.1).

``load_clip(model_name, pretrained)`` accepts

* an open_clip tag (``('ViT-B-16', 'openai')``): open_clip downloads it into
  ``cache_dir``; without internet the error names the cache folder;
* a local open_clip checkpoint (``torch.save(model.state_dict())``) together
  with an open_clip ``model_name``;
* an OpenAI state-dict file (key names of OpenAI's ``ViT-B-16.pt``, fp16
  values): the architecture is inferred from the shapes by open_clip's
  ``build_model_from_openai_state_dict`` when ``model_name`` is ``None``;
* an OpenAI TorchScript archive (``open_clip.load_openai_model``).

``model_name`` may also be the path of an open_clip model JSON (a custom
architecture such as the shipped toy CLIP): it is registered with
``open_clip.add_model_config`` and named after its file stem. Such a JSON may
declare a convolutional stem in place of the patch embedding (``"conv_stem"``,
:mod:`mmseg_excel.models.backbones.conv_stem`); every model of that name is
then built with it (:func:`create_clip_model`).

The format is detected from the file content, never from its name. All
construction, key layouts and QuickGELU come from open_clip.
"""
import json
import os
import os.path as osp
import tempfile
import warnings
import zipfile
from typing import Dict, Optional

import torch
import torch.nn as nn

_OPENAI_EXTRA_KEYS = ('input_resolution', 'context_length', 'vocab_size')
_DTYPES = dict(fp32=torch.float32, fp16=torch.float16, bf16=torch.bfloat16)
# model name -> conv_stem spec of the JSON it was registered from
_CONV_STEMS: Dict[str, dict] = {}
_STRIPPED_DIR: Optional[str] = None


def is_torchscript_archive(path: str) -> bool:
    """True if ``path`` is a TorchScript zip (it holds ``code/`` and
    ``constants.pkl``; a ``torch.save`` zip holds only ``data.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any(n.endswith('constants.pkl') or '/code/' in n for n in names)


def register_model_config(path: str) -> str:
    """Register an open_clip model JSON; return its name (the file stem).

    A ``"conv_stem"`` entry (not an open_clip key) is taken out: open_clip
    gets a copy of the JSON without it, and :func:`create_clip_model` attaches
    the stem to every model of that name.
    """
    import open_clip
    global _STRIPPED_DIR
    if not osp.isfile(path):
        raise FileNotFoundError(f'open_clip model config not found: {path}')
    name = osp.splitext(osp.basename(path))[0]
    try:
        with open(path) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'cannot read open_clip model config {path}: {e}'
                         ) from e
    stem = cfg.pop('conv_stem', None) if isinstance(cfg, dict) else None
    if stem is None:
        _CONV_STEMS.pop(name, None)
        open_clip.add_model_config(path)
        return name
    if not isinstance(stem, dict):
        raise ValueError(f'{path}: "conv_stem" must be an object such as '
                         '{"channels": [32, 64]}')
    if _STRIPPED_DIR is None:
        _STRIPPED_DIR = tempfile.mkdtemp(prefix='mmseg_excel_clip_cfg_')
    stripped = osp.join(_STRIPPED_DIR, f'{name}.json')
    with open(stripped, 'w') as f:
        json.dump(cfg, f)
    _CONV_STEMS[name] = stem
    open_clip.add_model_config(stripped)
    return name


def resolve_model_name(model_name: Optional[str]) -> Optional[str]:
    """Architecture name for open_clip; a ``*.json`` model config path is
    registered (:func:`register_model_config`) and its stem returned."""
    if model_name is None or not str(model_name).endswith('.json'):
        return model_name
    from .paths import resolve_data_path
    path = resolve_data_path(str(model_name))
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'open_clip model config not found: {model_name}')
    return register_model_config(path)


def create_clip_model(model_name: str, pretrained: Optional[str] = None,
                      conv_stem: bool = True, **kwargs) -> nn.Module:
    """``open_clip.create_model`` plus the conv stem its JSON declares
    (``conv_stem=False``: the plain patch convolution instead, as
    ``tools/toy_world/check_image_tower.py --arch vit`` builds it)."""
    import open_clip
    stem = _CONV_STEMS.get(model_name) if conv_stem else None
    if stem is not None and pretrained is not None:
        raise ValueError(
            f'{model_name!r} has a conv stem: open_clip tags cannot hold its '
            f'weights; pass the checkpoint file as `pretrained`')
    model = open_clip.create_model(model_name, pretrained=pretrained, **kwargs)
    if stem is not None:
        from mmseg_excel.models.backbones.conv_stem import attach_conv_stem
        attach_conv_stem(model, stem)
    return model


def tag_needs_quick_gelu(model_name: str, tag: Optional[str]) -> bool:
    """True if open_clip's pretrained config of ``(model_name, tag)`` says
    the weights were trained with QuickGELU (every OpenAI tag).

    open_clip builds its plain ``ViT-B-16`` config with exact ``nn.GELU``
    for ``pretrained='openai'`` and only warns; OpenAI's weights need
    QuickGELU (``x * sigmoid(1.702 x)``), as the official code runs them.
    """
    if tag is None:  # random weights: no activation to match
        return False
    import open_clip
    cfg = open_clip.get_pretrained_cfg(model_name, tag) or {}
    if cfg.get('quick_gelu', False):
        return True
    # `openai` tags of architectures open_clip has no pretrained entry for
    return str(tag).lower() == 'openai'


def _looks_like_path(s: str) -> bool:
    return (os.sep in s or '/' in s or s.startswith('.')
            or osp.splitext(s)[1] in ('.pt', '.pth', '.bin', '.safetensors'))


def _load_state_dict(path: str) -> dict:
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with the path
        raise ValueError(
            f'cannot read CLIP weights from {path!r}: not a TorchScript '
            f'archive nor a torch.save state dict ({e})') from e
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    if not isinstance(state, dict) or not state:
        raise ValueError(f'{path!r} does not hold a CLIP state dict')
    if next(iter(state)).startswith('module.'):
        state = {k[len('module.'):]: v for k, v in state.items()}
    if (not any(k.startswith('visual.conv1.') for k in state)
            or 'text_projection' not in state):
        raise ValueError(
            f'{path!r} is not a CLIP ViT state dict (no visual.conv1.* '
            f'/ text_projection key)')
    return state


def _patch_embed_weight(state: dict) -> torch.Tensor:
    """``visual.conv1.weight``, or the first weight of a conv stem."""
    if 'visual.conv1.weight' in state:
        return state['visual.conv1.weight']
    return next(v for k, v in state.items()
                if k.startswith('visual.conv1.') and k.endswith('.weight'))


def load_clip(model_name: Optional[str],
              pretrained: Optional[str],
              *,
              cache_dir: Optional[str] = None,
              force_quick_gelu: Optional[bool] = None,
              precision: str = 'fp32',
              device: str = 'cpu') -> nn.Module:
    """Build an ``open_clip.CLIP`` from any supported weight source.

    Args:
        model_name: open_clip architecture name (e.g. ``'ViT-B-16'``);
            ``None`` infers it from an OpenAI-layout state dict.
        pretrained: open_clip tag (``'openai'``), a file path, or ``None``
            (random weights, needs ``model_name``).
        cache_dir: download folder for tags.
        force_quick_gelu: passed to open_clip. ``None``: QuickGELU for every
            tag whose weights were trained with it (all OpenAI tags, see
            :func:`tag_needs_quick_gelu`; ``False`` there is an error) and
            for OpenAI-like files (fp16 values or the
            OpenAI ``input_resolution``/``context_length`` keys) and for
            architectures inferred from a state dict (``model_name=None``).
        precision: ``'fp32'`` (the official computation), ``'fp16'``,
            ``'bf16'``.
        device: where the model is put.

    Returns:
        The model in eval mode.
    """
    import open_clip
    from open_clip.model import build_model_from_openai_state_dict
    if precision not in _DTYPES:
        raise ValueError(f'precision must be one of {list(_DTYPES)}, '
                         f'got {precision!r}')
    from .paths import resolve_data_path
    model_name = resolve_model_name(model_name)
    if pretrained is not None:
        pretrained = resolve_data_path(pretrained)
    kw = {}
    if force_quick_gelu is not None:
        kw['force_quick_gelu'] = force_quick_gelu
    if pretrained is not None and (osp.exists(pretrained)
                                   or _looks_like_path(pretrained)):
        path = osp.expanduser(pretrained)
        if not osp.isfile(path):
            raise FileNotFoundError(f'CLIP weight file not found: {path}')
        if is_torchscript_archive(path):
            model = open_clip.load_openai_model(
                path, precision='fp32', device='cpu')
        else:
            state = _load_state_dict(path)
            openai_like = (
                any(key in state for key in _OPENAI_EXTRA_KEYS)
                or _patch_embed_weight(state).dtype == torch.float16)
            for key in _OPENAI_EXTRA_KEYS:
                state.pop(key, None)
            if openai_like and force_quick_gelu is None:
                # OpenAI weights were trained with QuickGELU; open_clip's
                # plain 'ViT-B-16' config would build nn.GELU
                kw['force_quick_gelu'] = True
            if model_name is None:
                # OpenAI layout: architecture inferred from the shapes
                model = build_model_from_openai_state_dict(
                    dict(state),
                    quick_gelu=(True if force_quick_gelu is None else
                                force_quick_gelu),
                    cast_dtype=torch.float32)
                model = model.float()
                # fp16 values are computed in fp32 (§1.1)
                model.load_state_dict(
                    {k: v.float() for k, v in state.items()})
            else:
                model = create_clip_model(model_name, pretrained=None, **kw)
                missing, unexpected = model.load_state_dict(
                    {k: v.float() if v.is_floating_point() else v
                     for k, v in state.items()}, strict=False)
                if missing or unexpected:
                    raise ValueError(
                        f'{path!r} does not match open_clip model '
                        f'{model_name!r}: missing {missing[:5]}, '
                        f'unexpected {unexpected[:5]}')
    else:
        if model_name is None:
            raise ValueError('model_name is required with pretrained='
                             f'{pretrained!r} (an open_clip tag or None)')
        tag_quick_gelu = tag_needs_quick_gelu(model_name, pretrained)
        if tag_quick_gelu and force_quick_gelu is False:
            raise ValueError(
                f'CLIP weights {model_name!r}/{pretrained!r} were trained '
                f'with QuickGELU; force_quick_gelu=False would build exact '
                f'GELU and silently change every feature')
        if tag_quick_gelu:
            kw['force_quick_gelu'] = True
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                model = create_clip_model(
                    model_name, pretrained=pretrained, cache_dir=cache_dir,
                    **kw)
        except Exception as e:  # noqa: BLE001 - network, unknown tag, ...
            where = cache_dir or '~/.cache/clip (open_clip default)'
            raise RuntimeError(
                f'could not get CLIP weights {model_name!r}/{pretrained!r} '
                f'through open_clip ({type(e).__name__}: {e}). Without '
                f'internet, place the checkpoint file (e.g. OpenAI '
                f'ViT-B-16.pt) in {where} or pass its path as `pretrained`.'
            ) from e
        for w in caught:
            if 'mismatch' in str(w.message).lower():
                # open_clip only warns; a mismatched architecture gives
                # silently wrong features, so refuse it
                raise ValueError(
                    f'open_clip built {model_name!r} for pretrained='
                    f'{pretrained!r} with a configuration that does not '
                    f'match the weights: {w.message}')
            warnings.warn_explicit(w.message, w.category, w.filename,
                                   w.lineno)
    model = model.to(device=device, dtype=_DTYPES[precision])
    return model.eval()

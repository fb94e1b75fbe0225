# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Convert an official ExCEL checkpoint to mmseg-excel names
(docs/methods/excel.md §6).

The official training script saves ``model.state_dict()`` of the DDP-wrapped
``ExCEL_model``: keys may start with ``module.``, and the frozen CLIP weights
(``encoder.*``, ≈600 MB, official behaviour 24) are included. Only the
trainable head is
kept and renamed::

    decoder_fts_fuse.linears_modulelist.j.proj.*    → decode_head.layer_projs.j.fc1.*
    decoder_fts_fuse.linears_modulelist.j.proj_2.*  → decode_head.layer_projs.j.fc2.*
    decoder_fts_fuse.linear_fuse.*                  → decode_head.fuse_conv.*
    decoder.transformer.resblocks.i.<rest>          → decode_head.decoder_layers.i.<rest>
    decoder.linear_pred.*                           → decode_head.conv_seg.*

Usage::

    python tools/model_converters/excel2mmseg.py official.pth ours.pth
"""
import argparse
import os
import os.path as osp
import pickle
import re
import tempfile
from collections import OrderedDict
from typing import Dict, Mapping

import torch

_BLOCK_PARTS = ('attn.in_proj_weight', 'attn.in_proj_bias',
                'attn.out_proj.weight', 'attn.out_proj.bias', 'ln_1.weight',
                'ln_1.bias', 'ln_2.weight', 'ln_2.bias', 'mlp.c_fc.weight',
                'mlp.c_fc.bias', 'mlp.c_proj.weight', 'mlp.c_proj.bias')

_RULES = (
    (re.compile(r'^decoder_fts_fuse\.linears_modulelist\.(\d+)\.proj\.'
                r'(weight|bias)$'), r'layer_projs.\1.fc1.\2'),
    (re.compile(r'^decoder_fts_fuse\.linears_modulelist\.(\d+)\.proj_2\.'
                r'(weight|bias)$'), r'layer_projs.\1.fc2.\2'),
    (re.compile(r'^decoder_fts_fuse\.linear_fuse\.(weight|bias)$'),
     r'fuse_conv.\1'),
    (re.compile(r'^decoder\.transformer\.resblocks\.(\d+)\.(' +
                '|'.join(re.escape(p) for p in _BLOCK_PARTS) + r')$'),
     r'decoder_layers.\1.\2'),
    (re.compile(r'^decoder\.linear_pred\.(weight|bias)$'), r'conv_seg.\1'),
)

#: official keys that are dropped: frozen CLIP and its derived buffers
_DROP = re.compile(r'^encoder\.')


def convert_excel_state_dict(
        sd: Mapping[str, torch.Tensor],
        prefix: str = 'decode_head.') -> Dict[str, torch.Tensor]:
    """Rename an official ExCEL state dict to mmseg-excel keys.

    Args:
        sd: official state dict (``module.`` prefixes allowed; a dict with a
            ``state_dict`` or ``model`` entry is unwrapped).
        prefix: prepended to every converted key (``'decode_head.'`` for the
            ``ExCEL`` segmentor, ``''`` to load into an ``ExCELHead``).

    Returns:
        An ordered dict of the head weights (values unchanged).

    Raises:
        KeyError: listing every key that is neither a head key nor a
            frozen-CLIP ``encoder.*`` key, or when no head key is found.
    """
    for wrapper in ('state_dict', 'model'):
        if wrapper in sd and isinstance(sd[wrapper], Mapping):
            sd = sd[wrapper]
    out: Dict[str, torch.Tensor] = OrderedDict()
    unknown = []
    for key, value in sd.items():
        name = key[len('module.'):] if key.startswith('module.') else key
        if _DROP.match(name):
            continue
        for pattern, repl in _RULES:
            if pattern.match(name):
                out[prefix + pattern.sub(repl, name)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise KeyError('excel2mmseg: unknown keys in the official checkpoint '
                       f'({len(unknown)}): {sorted(unknown)}')
    if not out:
        raise KeyError('excel2mmseg: no ExCEL head keys (decoder_fts_fuse.*, '
                       'decoder.*) found in the checkpoint')
    check_complete(out, prefix)
    return out


def check_complete(out: Mapping[str, torch.Tensor], prefix: str) -> None:
    """Every part of the head is present: fc1/fc2 of each layer projection,
    the fusion conv, every part of each decoder block, the classifier.

    Raises:
        KeyError: naming the missing keys (a partial or mismatched file).
    """
    names = [k[len(prefix):] for k in out]
    projs = {int(m.group(1)) for n in names
             for m in [re.match(r'layer_projs\.(\d+)\.', n)] if m}
    blocks = {int(m.group(1)) for n in names
              for m in [re.match(r'decoder_layers\.(\d+)\.', n)] if m}
    want = ['fuse_conv.weight', 'fuse_conv.bias', 'conv_seg.weight',
            'conv_seg.bias']
    want += [f'layer_projs.{j}.{fc}.{p}' for j in range(max(projs, default=-1)
                                                         + 1)
             for fc in ('fc1', 'fc2') for p in ('weight', 'bias')]
    want += [f'decoder_layers.{i}.{part}'
             for i in range(max(blocks, default=-1) + 1)
             for part in _BLOCK_PARTS]
    if not projs or not blocks:
        want.append('layer_projs.0.* and decoder_layers.0.*')
    missing = [w for w in want if w not in names]
    if missing:
        raise KeyError(f'excel2mmseg: the checkpoint lacks {len(missing)} '
                       f'head key(s) (partial or not an ExCEL checkpoint): '
                       f'{missing[:8]}')


def load_official(path: str) -> Mapping[str, torch.Tensor]:
    """Read an official checkpoint weights-only, with errors that name the
    file: missing, truncated / corrupt, or not a state dict."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'excel2mmseg: checkpoint not found: {path}')
    try:
        sd = torch.load(path, map_location='cpu', weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as e:
        raise ValueError(f'excel2mmseg: cannot read {path} (truncated, '
                         f'corrupt or not a torch checkpoint): '
                         f'{type(e).__name__}: {e}') from e
    if not isinstance(sd, Mapping):
        raise ValueError(f'excel2mmseg: {path} holds a '
                         f'{type(sd).__name__}, not a state dict')
    return sd


def save_atomic(obj, dst: str) -> None:
    """``torch.save`` to a temporary file beside ``dst``, then rename: an
    interrupted conversion never leaves a partial ``dst``."""
    folder = osp.dirname(osp.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp_', suffix='.pth')
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def main(argv=None) -> None:
    """CLI: ``excel2mmseg.py src dst``."""
    parser = argparse.ArgumentParser(
        description='Convert an official ExCEL checkpoint to mmseg-excel.')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--prefix',
        default='decode_head.',
        help='prefix of the converted keys (default: decode_head.)')
    args = parser.parse_args(argv)
    # Official checkpoints are plain state dicts of tensors.
    sd = load_official(args.src)
    converted = convert_excel_state_dict(sd, prefix=args.prefix)
    save_atomic(
        dict(
            state_dict=converted,
            meta=dict(source=args.src, converter='excel2mmseg')), args.dst)
    print(f'saved {len(converted)} tensors to {args.dst}')


if __name__ == '__main__':
    main()

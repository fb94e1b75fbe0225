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
import re
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
    return out


def main() -> None:
    """CLI: ``excel2mmseg.py src dst``."""
    parser = argparse.ArgumentParser(
        description='Convert an official ExCEL checkpoint to mmseg-excel.')
    parser.add_argument('src', help='official checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint path')
    parser.add_argument(
        '--prefix',
        default='decode_head.',
        help='prefix of the converted keys (default: decode_head.)')
    args = parser.parse_args()
    # Official checkpoints are plain state dicts of tensors.
    sd = torch.load(args.src, map_location='cpu', weights_only=True)
    converted = convert_excel_state_dict(sd, prefix=args.prefix)
    torch.save(
        dict(
            state_dict=converted,
            meta=dict(source=args.src, converter='excel2mmseg')), args.dst)
    print(f'saved {len(converted)} tensors to {args.dst}')


if __name__ == '__main__':
    main()

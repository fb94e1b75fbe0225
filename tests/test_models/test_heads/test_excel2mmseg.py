# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Official ExCEL checkpoint → mmseg-excel names (tools/model_converters)."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmseg_excel.models.decode_heads import ExCELHead

TOOL = Path(__file__).resolve().parents[3] / 'tools' / 'model_converters'
sys.path.insert(0, str(TOOL))
from excel2mmseg import convert_excel_state_dict  # noqa: E402

L, D, C, K, NB = 2, 16, 8, 3, 2


def _official_sd(head):
    """Our head's weights under official names (hand-written inverse)."""
    sd = {}
    for j in range(L):
        for ours, theirs in (('fc1', 'proj'), ('fc2', 'proj_2')):
            for p in ('weight', 'bias'):
                sd[f'module.decoder_fts_fuse.linears_modulelist.{j}.'
                   f'{theirs}.{p}'] = getattr(head.layer_projs[j], ours).\
                    state_dict()[p].clone()
    for p in ('weight', 'bias'):
        sd[f'module.decoder_fts_fuse.linear_fuse.{p}'] = \
            head.fuse_conv.state_dict()[p].clone()
        sd[f'module.decoder.linear_pred.{p}'] = \
            head.conv_seg.state_dict()[p].clone()
    for i, blk in enumerate(head.decoder_layers):
        for k, v in blk.state_dict().items():
            sd[f'module.decoder.transformer.resblocks.{i}.{k}'] = v.clone()
    sd['module.encoder.visual.conv1.weight'] = torch.zeros(4, 3, 16, 16)
    sd['module.encoder.positional_embedding'] = torch.zeros(5, 4)
    return sd


def _heads():
    torch.manual_seed(0)
    a = ExCELHead(
        D, C, num_classes=K, num_layers=L, num_heads=2, num_decoder_layers=NB)
    torch.manual_seed(1)
    b = ExCELHead(
        D, C, num_classes=K, num_layers=L, num_heads=2, num_decoder_layers=NB)
    return a, b


def test_roundtrip_into_head():
    src, dst = _heads()
    conv = convert_excel_state_dict(_official_sd(src), prefix='')
    assert len(conv) == len(src.state_dict())
    dst.load_state_dict(conv, strict=True)
    for k, v in src.state_dict().items():
        assert torch.equal(dst.state_dict()[k], v), k
    with_prefix = convert_excel_state_dict({'state_dict': _official_sd(src)})
    assert all(k.startswith('decode_head.') for k in with_prefix)


def test_unknown_and_empty():
    src, _ = _heads()
    sd = _official_sd(src)
    sd['module.decoder.extra.weight'] = torch.zeros(1)
    sd['foo'] = torch.zeros(1)
    with pytest.raises(KeyError, match=r"foo.*module\.decoder\.extra"):
        convert_excel_state_dict(sd)
    with pytest.raises(KeyError, match='no ExCEL head keys'):
        convert_excel_state_dict({'encoder.x': torch.zeros(1)})


def test_cli(tmp_path):
    src, dst = _heads()
    torch.save(_official_sd(src), tmp_path / 'official.pth')
    subprocess.run([
        sys.executable,
        str(TOOL / 'excel2mmseg.py'),
        str(tmp_path / 'official.pth'),
        str(tmp_path / 'ours.pth')
    ],
                   check=True,
                   capture_output=True)
    ckpt = torch.load(tmp_path / 'ours.pth', weights_only=True)
    sd = {k[len('decode_head.'):]: v for k, v in ckpt['state_dict'].items()}
    dst.load_state_dict(sd, strict=True)
    assert torch.equal(dst.conv_seg.weight, src.conv_seg.weight)


def test_cli_refuses_bad_files_and_writes_atomically(tmp_path, monkeypatch):
    import excel2mmseg
    head, _ = _heads()
    src = tmp_path / 'official.pth'
    torch.save(_official_sd(head), src)
    dst = tmp_path / 'out' / 'ours.pth'
    excel2mmseg.main([str(src), str(dst)])
    assert set(torch.load(dst, weights_only=True)['state_dict']) == {
        'decode_head.' + k for k in head.state_dict()}
    assert [p.name for p in dst.parent.iterdir()] == ['ours.pth']
    # truncated file: a clear error naming it, no output written
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(src.read_bytes()[:len(src.read_bytes()) // 2])
    with pytest.raises(ValueError, match='cut.pth.*truncated, corrupt'):
        excel2mmseg.main([str(cut), str(tmp_path / 'x.pth')])
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint at all')
    with pytest.raises(ValueError, match='junk.pth'):
        excel2mmseg.main([str(junk), str(tmp_path / 'x.pth')])
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        excel2mmseg.main([str(tmp_path / 'missing.pth'),
                          str(tmp_path / 'x.pth')])
    # mismatched: a decoder block part missing
    sd = _official_sd(head)
    del sd['module.decoder.transformer.resblocks.1.ln_2.bias']
    part = tmp_path / 'partial.pth'
    torch.save(sd, part)
    with pytest.raises(KeyError, match='decoder_layers.1.ln_2.bias'):
        excel2mmseg.main([str(part), str(tmp_path / 'x.pth')])
    assert not (tmp_path / 'x.pth').exists()
    # interrupted save: the old output stays whole, no temp file remains
    before = dst.read_bytes()

    def boom(obj, f):
        open(f, 'wb').write(b'partial')
        raise KeyboardInterrupt

    monkeypatch.setattr(excel2mmseg.torch, 'save', boom)
    with pytest.raises(KeyboardInterrupt):
        excel2mmseg.main([str(src), str(dst)])
    assert dst.read_bytes() == before
    assert [p.name for p in dst.parent.iterdir()] == ['ours.pth']

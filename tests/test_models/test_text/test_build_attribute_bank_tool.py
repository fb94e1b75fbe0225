# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/build_attribute_bank.py writes a bank that the text head accepts."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from mmseg_excel.models.text import (ExCELTextHead, load_attribute_bank,
                                     text_semantic_enrichment)

TOOL = Path(
    __file__).resolve().parents[3] / 'tools' / 'build_attribute_bank.py'


def _tool():
    spec = importlib.util.spec_from_file_location('build_attribute_bank', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tool_builds_loadable_bank(tiny_clip_files, tmp_path, capsys):
    torch.set_num_threads(1)
    desc = tmp_path / 'desc.json'
    classes = ['apple', 'moon', 'fish']
    desc.write_text(
        json.dumps({
            c: [f'a clean origami {c}. variant {i}.' for i in range(5)]
            for c in classes
        }))
    out = tmp_path / 'bank.pt'
    rc = _tool().main([
        '--descriptions',
        str(desc), '--clip-model', tiny_clip_files['name'], '--pretrained',
        tiny_clip_files['open_clip'], '--num-clusters', '6', '--seed', '1',
        '--n-init', '2', '--out',
        str(out)
    ])
    assert rc == 0
    text = capsys.readouterr().out
    assert 'clusters per class: min' in text and 'apple' in text
    bank = load_attribute_bank(str(out))
    assert bank.class_order == classes and bank.num_clusters == 6
    assert bank.meta['seed'] == 1 and bank.meta['n_init'] == 2
    clip = dict(
        model_name=tiny_clip_files['name'],
        pretrained=tiny_clip_files['open_clip'])
    head = ExCELTextHead(
        clip=clip,
        class_names=classes,
        bg_names=['sky'],
        tse=dict(descriptions=str(desc), bank_file=str(out), num_clusters=6))
    ref = text_semantic_enrichment(head.plain_embeds[:3],
                                   head.plain_embeds[3:], bank.centers, 0.9)
    torch.testing.assert_close(head(), ref)
    with pytest.raises(ValueError, match='num_clusters=7'):
        ExCELTextHead(
            clip=clip,
            class_names=classes,
            tse=dict(bank_file=str(out), num_clusters=7))

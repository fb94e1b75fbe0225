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


def test_fallback_from_class_names(tiny_clip_files, tmp_path, capsys):
    """--class-names: generic-template descriptions written and clustered;
    a text head with those classes accepts the bank."""
    torch.set_num_threads(1)
    out = tmp_path / 'bank.pt'
    desc = tmp_path / 'sub' / 'fallback.json'
    rc = _tool().main([
        '--class-names', 'potted plant', 'moon', '--write-descriptions',
        str(desc), '--clip-model', tiny_clip_files['name'], '--pretrained',
        tiny_clip_files['open_clip'], '--num-clusters', '4', '--n-init', '2',
        '--out', str(out)
    ])
    assert rc == 0
    assert 'ETA' in capsys.readouterr().out  # text-encoding progress bar
    written = json.loads(desc.read_text())
    assert list(written) == ['potted plant', 'moon']
    assert written['moon'][0] == 'a photo of a moon.'
    assert len(written['moon']) == 10
    bank = load_attribute_bank(str(out))
    assert bank.class_order == ['potted plant', 'moon']
    assert tuple(bank.flags.shape) == (2, 4)
    # explicit templates; the default descriptions path next to --out
    rc = _tool().main([
        '--class-names', 'cat', 'dog', '--templates', 'a {} photo.',
        'the {}.', '--clip-model', tiny_clip_files['name'], '--pretrained',
        tiny_clip_files['open_clip'], '--num-clusters', '2', '--n-init', '1',
        '--out', str(tmp_path / 'b2.pt')
    ])
    assert json.loads((tmp_path / 'b2_descriptions.json').read_text()) == {
        'cat': ['a cat photo.', 'the cat.'],
        'dog': ['a dog photo.', 'the dog.']
    }
    with pytest.raises(SystemExit):
        _tool().main([
            '--descriptions', str(desc), '--write-descriptions', 'x.json',
            '--pretrained', 'p', '--num-clusters', '2', '--out', 'o.pt'
        ])
    with pytest.raises(ValueError, match='repeat'):
        _tool().main([
            '--class-names', 'cat', 'cat', '--clip-model',
            tiny_clip_files['name'], '--pretrained',
            tiny_clip_files['open_clip'], '--num-clusters', '2', '--out',
            str(tmp_path / 'b3.pt')
        ])

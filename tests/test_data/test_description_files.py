# Copyright (c) mmseg-excel contributors. All rights reserved.
"""The shipped TSE description files (EXCEL.md §2.2): class keys in dataset
order, 20 distinct attribute sentences per class, the ExCEL prefix, and no
sentence longer than CLIP's 77-token context."""
import json
from pathlib import Path

import pytest

from mmseg_excel.models.text.prompts import COCO_CLASSES, VOC_CLASSES

DESC = Path(__file__).resolve().parents[2] / 'mmseg_excel' / 'data' / \
    'descriptions'


@pytest.mark.parametrize('name,classes', [('voc.json', VOC_CLASSES),
                                          ('coco.json', COCO_CLASSES)])
def test_description_file(name, classes):
    data = json.loads((DESC / name).read_text())
    assert list(data) == list(classes)
    for cls, sentences in data.items():
        assert len(sentences) == 20, cls
        assert len(set(sentences)) == 20, cls
        for s in sentences:
            assert s.startswith(f'a clean origami {cls}. '), s
            assert s == s.lower() and s.isascii(), s
            assert len(s) <= 170, s


@pytest.mark.parametrize('name', ['voc.json', 'coco.json'])
def test_descriptions_fit_clip_context(name):
    from open_clip.tokenizer import SimpleTokenizer
    tok = SimpleTokenizer()
    data = json.loads((DESC / name).read_text())
    longest = max(len(tok.encode(s)) for v in data.values() for s in v)
    assert longest + 2 <= 77  # start and end tokens

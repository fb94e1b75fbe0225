# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Image-level label helpers and the labels file (EXCEL.md §8.1)."""
import json

import numpy as np
import pytest

from mmseg_excel.datasets.image_labels import (class_ids_from_mask, multi_hot,
                                               read_labels_file,
                                               write_labels_file)


def test_class_ids_from_mask_excludes_bg_and_ignore():
    mask = np.array([[0, 3, 3], [255, 7, 0], [20, 255, 255]], np.uint8)
    assert class_ids_from_mask(mask, 21) == [3, 7, 20]
    assert class_ids_from_mask(np.array([[0, 255]], np.uint8), 21) == []


def test_class_ids_from_mask_out_of_range_names_source():
    mask = np.array([[0, 21]], np.uint8)
    with pytest.raises(ValueError, match=r'x\.png.*\[21\]'):
        class_ids_from_mask(mask, 21, source='x.png')
    with pytest.raises(ValueError, match='single-channel'):
        class_ids_from_mask(np.zeros((2, 2, 3), np.uint8), 21, source='y')


def test_multi_hot_positions():
    vec = multi_hot([1, 5, 20], 21)
    assert vec.dtype == np.float32 and vec.shape == (20, )
    assert np.flatnonzero(vec).tolist() == [0, 4, 19]
    assert multi_hot([], 21).sum() == 0
    with pytest.raises(ValueError, match='foreground'):
        multi_hot([0], 21)


def test_labels_file_roundtrip_and_errors(tmp_path):
    path = tmp_path / 'sub' / 'labels.json'
    write_labels_file(str(path), {'a': [5, 2], 'b': []}, classes=['bg', 'x'])
    payload = json.loads(path.read_text())
    assert payload['labels'] == {'a': [2, 5], 'b': []}
    assert read_labels_file(
        str(path), num_classes=21) == {
            'a': [2, 5],
            'b': []
        }
    # plain mapping without header
    plain = tmp_path / 'plain.json'
    plain.write_text(json.dumps({'c': [3]}))
    assert read_labels_file(str(plain)) == {'c': [3]}
    with pytest.raises(ValueError, match=r'plain\.json.*\[3\]'):
        read_labels_file(str(plain), num_classes=3)
    with pytest.raises(ValueError, match='classes'):
        read_labels_file(str(path), classes=['bg', 'y'])
    with pytest.raises(FileNotFoundError, match='nope.json'):
        read_labels_file(str(tmp_path / 'nope.json'))
    bad = tmp_path / 'bad.json'
    bad.write_text('{not json')
    with pytest.raises(ValueError, match='bad.json'):
        read_labels_file(str(bad))

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/toy_world/check_image_tower.py: the supervised tower check runs for
both towers and its metrics mean what they say."""
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools' / 'toy_world'))


def test_scores_perfect_inverted_and_chance():
    import check_image_tower as t
    rng = np.random.default_rng(0)
    y = (rng.random((64, 8)) < 0.3).astype(np.float32)
    y[0], y[1] = 0, 1  # no class / every class: no per-image AUC for these
    y[2:, 0] = 1 - y[2:, 0]  # every class occurs somewhere
    perfect = t.scores(y, y + 0.01 * rng.random(y.shape))
    assert perfect['mAP'] == pytest.approx(100) and perfect['AUC'] == 1.0
    inverted = t.scores(y, -y)
    assert inverted['AUC'] == 0.0 and inverted['mAP'] < 60
    chance = t.scores(y, rng.random(y.shape))
    assert 0.3 < chance['AUC'] < 0.7


@pytest.mark.parametrize('arch', ['vit', 'hybrid'])
def test_tower_check_runs_and_reports(arch, capsys):
    import check_image_tower as t
    rows = t.main(['--arch', arch, '--steps', '3', '--batch-size', '8',
                   '--num-test', '32', '--eval-every', '2', '--threads', '1'])
    out = capsys.readouterr().out
    assert [r['step'] for r in rows] == [2, 3]
    assert all(0 <= r['mAP'] <= 100 and 0 <= r['AUC'] <= 1 for r in rows)
    assert re.search(rf'^{arch} tower of toy_clip: [0-9.]+ M parameters',
                     out, re.M), out
    assert re.search(r'^step 3/3 loss [0-9.]+ test mAP [0-9.]+ AUC [0-9.]+',
                     out, re.M), out

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""docs/custom_dataset.md, command by command: every ``bash`` block of the
page runs, in order, in a fresh folder (the repository's configs, tools and
package linked in), on the Toy World rendered as a custom folder dataset;
then the files each step promises are checked."""
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / 'docs' / 'custom_dataset.md'


def _bash_blocks(text: str):
    return re.findall(r'```bash\n(.*?)```', text, flags=re.S)


def test_page_has_the_steps():
    blocks = _bash_blocks(PAGE.read_text())
    joined = '\n'.join(blocks)
    for step in ('make_dataset.py', 'build_attribute_bank.py',
                 'tools/train.py', 'visualize_cams.py',
                 'generate_pseudo_labels.py', 'tools/test.py'):
        assert step in joined, step


@pytest.mark.slow
def test_every_command_of_the_page(tmp_path):
    for name in ('configs', 'tools', 'mmseg_excel'):
        (tmp_path / name).symlink_to(ROOT / name)
    env = dict(os.environ, PYTHONUNBUFFERED='1',
               PATH=f'{Path(sys.executable).parent}{os.pathsep}'
               f'{os.environ["PATH"]}')
    outputs = []
    for block in _bash_blocks(PAGE.read_text()):
        proc = subprocess.run(['bash', '-euo', 'pipefail', '-c', block],
                              cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=900)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f'{block}\n---\n{out[-4000:]}'
        outputs.append(out)
    data = tmp_path / 'data' / 'my_dataset'
    # 1. the folder layout: a labels table of class names per split
    with open(data / 'labels_train.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 32 and set(rows[0]) == {'image', 'labels'}
    # 2. fallback descriptions (10 templates per class) and the bank
    desc = json.loads((data / 'descriptions.json').read_text())
    assert list(desc)[:2] == ['apple', 'star']
    assert all(len(v) == 10 for v in desc.values())
    assert (data / 'attribute_bank.pt').is_file()
    # 3. ExCEL trained (validation mIoU printed) and used that bank
    work = tmp_path / 'work_dirs'
    assert (work / 'my_excel' / 'iter_20.pth').is_file()
    assert re.search(r'mIoU: [0-9.]+', outputs[2]), outputs[2][-2000:]
    assert 'attribute bank saved' not in outputs[2]  # loaded, not rebuilt
    pic = np.asarray(Image.open(work / 'my_cams' / 'val_000000.png'))
    assert pic.shape[1] >= 2 * 96 and pic.shape[0] > 2 * 96
    # 4. one pseudo mask per training image, scored against the masks
    masks = sorted(p.name for p in (data / 'pseudo_labels' /
                                    'excel').glob('*.png'))
    assert masks == sorted(r['image'] for r in rows)
    assert 'pseudo-label mIoU' in outputs[4]
    # 5. the mmseg segmenter trained on them and tested
    assert (work / 'my_fcn' / 'iter_20.pth').is_file()
    assert re.search(r'mIoU: [0-9.]+', outputs[5]), outputs[5][-2000:]

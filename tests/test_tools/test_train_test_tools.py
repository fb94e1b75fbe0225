# Copyright (c) mmseg-excel contributors. All rights reserved.
"""tools/train.py → --resume → tools/test.py, end to end on CPU (subprocess)."""
import os
import os.path as osp
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mmseg_excel.testing.tiny_datasets import make_tiny_voc

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / 'tests' / 'data' / 'configs' / 'tiny_segformer_voc-wsss.py'


def _run(args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.mark.slow
def test_train_resume_test(tmp_path):
    data = make_tiny_voc(str(tmp_path / 'voc'), num_train=4, num_val=3,
                         size=(64, 80))
    work = tmp_path / 'work'
    opts = ['--cfg-options', f'train_dataloader.dataset.data_root={data["root"]}',
            f'val_dataloader.dataset.data_root={data["root"]}',
            f'test_dataloader.dataset.data_root={data["root"]}']
    _run([str(ROOT / 'tools' / 'train.py'), str(CFG), '--work-dir',
          str(work)] + opts, cwd=tmp_path)
    assert (work / 'iter_6.pth').is_file()
    assert (work / 'last_checkpoint').is_file()
    # resume from iteration 3 and train to 9: the log must start at 4
    out = _run([str(ROOT / 'tools' / 'train.py'), str(CFG), '--work-dir',
                str(work), '--resume', str(work / 'iter_3.pth'),
                '--cfg-options', 'train_cfg.max_iters=9'] + opts[1:],
               cwd=tmp_path)
    assert re.search(r'resumed epoch: \d+, iter: 3', out), out[-3000:]
    assert (work / 'iter_9.pth').is_file()
    assert not re.search(r'Iter\(train\) \[1/9\]', out)
    # evaluate with mmseg's IoUMetric and save PNG predictions
    pred_dir = tmp_path / 'preds'
    out = _run([str(ROOT / 'tools' / 'test.py'), str(CFG),
                str(work / 'iter_9.pth'), '--work-dir', str(work),
                '--out', str(pred_dir)] + opts, cwd=tmp_path)
    assert 'mIoU' in out and 'aeroplane' in out
    pngs = sorted(os.listdir(pred_dir))
    assert len(pngs) == len(data['splits']['val'])
    assert all(p.endswith('.png') for p in pngs)

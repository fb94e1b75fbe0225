# Copyright (c) mmseg-excel contributors. All rights reserved.
"""mmengine 0.10.7 + torch >= 2.6 checkpoint loading (weights_only)."""
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import mmseg_excel  # noqa: F401  (installs the loader)
from mmseg_excel.utils.checkpoint_compat import (load_local_checkpoint,
                                                 safe_torch_load)


def _runner_like_checkpoint(path):
    hub = MessageHub.get_instance('test_ckpt_compat')
    for i in range(3):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', 7)
    ckpt = dict(
        meta=dict(iter=7, seed=np.int64(3), hist=np.arange(4.0),
                  message_hub=hub.state_dict()),
        state_dict={'w': torch.arange(6.).view(2, 3)})
    torch.save(ckpt, path)


class _Evil:

    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_plain_torch_load_fails_and_ours_loads(tmp_path):
    path = str(tmp_path / 'iter_7.pth')
    _runner_like_checkpoint(path)
    # the problem this module fixes: torch's default refuses the meta
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    ckpt = _load_checkpoint(path, map_location='cpu')
    assert ckpt['meta']['iter'] == 7
    assert int(ckpt['meta']['seed']) == 3
    np.testing.assert_array_equal(ckpt['meta']['hist'], np.arange(4.0))
    hub = ckpt['meta']['message_hub']
    assert hub['runtime_info']['iter'] == 7
    assert hub['log_scalars']['train/loss'].current() == pytest.approx(1 / 3)
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(6.).view(2, 3))
    assert CheckpointLoader._schemes[''] is load_local_checkpoint


def test_untrusted_pickle_is_refused(tmp_path, monkeypatch):
    path = str(tmp_path / 'evil.pth')
    torch.save({'x': _Evil()}, path)
    monkeypatch.delenv('MMSEG_EXCEL_UNSAFE_LOAD', raising=False)
    with pytest.raises(RuntimeError, match=r'(?s)evil.pth.*MMSEG_EXCEL_UNSAFE_LOAD'):
        safe_torch_load(path)


def test_missing_checkpoint_names_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_local_checkpoint(str(tmp_path / 'nope.pth'))


def test_older_torch_allow_list_fallbacks(tmp_path, monkeypatch):
    """torch 2.4 has only add_safe_globals; torch < 2.4 has no allow-list:
    plain weights still load weights-only, mmengine checkpoints load with a
    warning (as mmengine does there), never silently."""
    path = str(tmp_path / 'iter_7.pth')
    _runner_like_checkpoint(path)
    ser = torch.serialization
    real_add = ser.add_safe_globals
    added = []

    def add(safe):
        added.extend(safe)
        real_add(safe)

    # torch 2.4: the global registry instead of the context manager
    monkeypatch.delattr(ser, 'safe_globals')
    monkeypatch.setattr(ser, 'add_safe_globals', add)
    try:
        assert safe_torch_load(path)['meta']['iter'] == 7 and added
    finally:
        ser.clear_safe_globals()
    # torch < 2.4: no allow-list API at all
    monkeypatch.delattr(ser, 'add_safe_globals')
    plain = str(tmp_path / 'plain.pth')
    torch.save({'w': torch.ones(2)}, plain)
    assert torch.equal(safe_torch_load(plain)['w'], torch.ones(2))
    with pytest.warns(UserWarning, match='weights_only=False'):
        assert safe_torch_load(path)['meta']['iter'] == 7

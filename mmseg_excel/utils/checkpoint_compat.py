# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Checkpoint loading for mmengine 0.10.7 with torch >= 2.6.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``. mmengine
0.10.7 calls ``torch.load(filename, map_location)`` without that argument, so
resuming from a checkpoint the Runner itself wrote fails: the checkpoint's
``meta`` holds ``MessageHub`` state (``HistoryBuffer`` objects, numpy scalars
and arrays) that the restricted unpickler refuses.

Importing :mod:`mmseg_excel` replaces mmengine's local-file checkpoint loader
with :func:`load_local_checkpoint`, which

1. loads with ``weights_only=True`` and an allow-list of the types mmengine
   writes into its own checkpoints (:func:`checkpoint_safe_globals`);
2. only if that still fails, and only for a file the caller trusts
   (``MMSEG_EXCEL_UNSAFE_LOAD=1`` or ``trust=True``), loads with
   ``weights_only=False``; otherwise raises an error that names the file and
   the refused type.
"""
import os
import os.path as osp
import pickle
import warnings
from collections import OrderedDict, defaultdict
from contextlib import nullcontext
from typing import Any, Callable, List, Optional

import numpy as np
import torch
from mmengine.runner.checkpoint import CheckpointLoader

_ENV_UNSAFE = 'MMSEG_EXCEL_UNSAFE_LOAD'


def checkpoint_safe_globals() -> List[Callable]:
    """Types that mmengine's Runner writes into checkpoints (meta, hub)."""
    from mmengine.logging import HistoryBuffer
    # HistoryBuffer pickles bound statistics methods as getattr(obj, name);
    # torch's restricted unpickler still refuses to *call* anything that is
    # not allow-listed, so getattr only yields values here.
    safe: List[Any] = [HistoryBuffer, OrderedDict, defaultdict, np.ndarray,
                       np.dtype, getattr, slice]
    # numpy's pickling entry points moved between 1.x and 2.x.
    for mod_name in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        try:
            mod = __import__(mod_name, fromlist=['_reconstruct', 'scalar'])
        except ImportError:
            continue
        safe += [mod._reconstruct, mod.scalar]
    # Concrete dtype classes (numpy >= 1.25 pickles dtypes by class).
    for name in ('Float64DType', 'Float32DType', 'Float16DType', 'Int64DType',
                 'Int32DType', 'UInt8DType', 'BoolDType'):
        dtype_cls = getattr(getattr(np, 'dtypes', None), name, None)
        if dtype_cls is not None:
            safe.append(dtype_cls)
    return safe


def safe_torch_load(filename: str,
                    map_location: Optional[Any] = None,
                    trust: Optional[bool] = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and mmengine's types allowed.

    Args:
        filename: path of the checkpoint.
        map_location: as in :func:`torch.load`.
        trust: allow a full (unsafe) unpickling as a last resort. ``None``
            reads the environment variable ``MMSEG_EXCEL_UNSAFE_LOAD``.
    """
    allow = _allow_list(checkpoint_safe_globals())
    try:
        with allow if allow is not None else nullcontext():
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if trust is None:
            trust = os.environ.get(_ENV_UNSAFE, '0') == '1'
        if allow is None and not trust:
            # torch < 2.4 has no allow-list: mmengine's own checkpoints
            # (MessageHub state in meta) need the full unpickling that torch
            # and mmengine always did there
            warnings.warn(
                f'torch {torch.__version__} cannot allow-list the types of '
                f'mmengine checkpoints; loading {filename!r} with '
                'weights_only=False (as mmengine does on this torch)')
            trust = True
        if not trust:
            raise RuntimeError(
                f'Refusing to fully unpickle checkpoint {filename!r}: it holds '
                f'objects outside the weights-only allow-list ({err}). If you '
                f'trust this file, set {_ENV_UNSAFE}=1.') from err
        return torch.load(
            filename, map_location=map_location, weights_only=False)


def _allow_list(safe: List[Callable]):
    """A context manager allow-listing ``safe`` for weights-only loading:
    ``torch.serialization.safe_globals`` (torch >= 2.5), else the global
    ``add_safe_globals`` (torch 2.4; registered once, a no-op context
    returned), else ``None`` (older torch: no allow-list exists)."""
    ser = torch.serialization
    if hasattr(ser, 'safe_globals'):
        return ser.safe_globals(safe)
    if hasattr(ser, 'add_safe_globals'):
        ser.add_safe_globals(safe)
        return nullcontext()
    return None


def load_local_checkpoint(filename: str, map_location: Optional[Any] = None):
    """Drop-in for mmengine's ``load_from_local`` (local paths)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)


CheckpointLoader.register_scheme(prefixes='', force=True)(
    load_local_checkpoint)

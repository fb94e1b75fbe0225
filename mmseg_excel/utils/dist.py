# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Multi-process runs without a GPU: mmengine's launcher on CPU (gloo).

mmengine's ``init_dist(launcher='pytorch')`` calls ``torch.cuda.set_device``
and the runtime config asks for NCCL, so ``tools/dist_train.sh CONFIG N`` dies
on a machine without CUDA ("Found no NVIDIA driver"). :func:`setup_cpu_dist`
initialises the process group with gloo from torchrun's environment before
the Runner is built (the Runner then skips its own initialisation) and makes
the model wrapper a CPU ``DistributedDataParallel`` (no ``device_ids``).
With CUDA nothing changes: mmengine's NCCL path is used (docs/train_test.md).
"""
import os
from typing import Tuple

import torch
import torch.distributed as torch_dist
from mmengine.config import Config


def setup_cpu_dist(cfg: Config) -> bool:
    """Prepare ``cfg`` (with ``cfg.launcher`` set) for a CPU multi-process
    run; returns True when it did (a launcher, and no CUDA device)."""
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'launcher {launcher!r} without a CUDA device: only torchrun '
            "('pytorch', tools/dist_train.sh) is supported on CPU")
    _check_torchrun_env()
    env_cfg = cfg.setdefault('env_cfg', {})
    env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None  # a CPU module: DDP wants no device ids
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters',
                       cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper
    # every rank says it joined (mmengine's logger is silent off rank 0)
    print(f'[mmseg_excel] CPU distributed run: gloo, rank '
          f'{torch_dist.get_rank()} of {torch_dist.get_world_size()}',
          flush=True)
    return True


def _check_torchrun_env() -> None:
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher pytorch needs torchrun\'s environment '
                           f'({", ".join(missing)} unset): use '
                           'tools/dist_train.sh or torchrun')


def init_launcher(launcher: str) -> Tuple[int, int]:
    """Start the process group of a tool that has no Runner (e.g. the
    pseudo-label export): NCCL through mmengine's ``init_dist`` with CUDA
    (one device per local rank), gloo without. Returns ``(rank,
    world_size)``; ``'none'`` gives ``(0, 1)`` and starts nothing."""
    if launcher == 'none':
        return 0, 1
    if launcher != 'pytorch':
        raise ValueError(f'launcher must be "none" or "pytorch" (torchrun), '
                         f'got {launcher!r}')
    _check_torchrun_env()
    if not torch_dist.is_initialized():
        if torch.cuda.is_available():
            from mmengine.dist import init_dist
            init_dist('pytorch', backend='nccl')
        else:
            torch_dist.init_process_group(backend='gloo')
    return torch_dist.get_rank(), torch_dist.get_world_size()


def teardown_dist() -> None:
    """Destroy the process group at the end of a run: a gloo group left to
    interpreter shutdown can abort a rank ("terminate called without an
    active exception") after the work is done."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()

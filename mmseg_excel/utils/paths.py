# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Resolve data files shipped with the package from any working directory."""
import os.path as osp

PACKAGE_DIR = osp.dirname(osp.dirname(osp.abspath(__file__)))


def resolve_data_path(path: str) -> str:
    """Return ``path`` if it exists; else try it inside the installed package.

    Configs name shipped files as ``mmseg_excel/data/...`` (relative to the
    repository root); this also finds them when a tool runs elsewhere.
    """
    if path is None or osp.exists(path) or osp.isabs(path):
        return path
    norm = osp.normpath(path)
    prefix = 'mmseg_excel' + osp.sep
    if norm.startswith(prefix):
        candidate = osp.join(PACKAGE_DIR, norm[len(prefix):])
        if osp.exists(candidate):
            return candidate
    return path

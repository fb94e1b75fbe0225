# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Import ``mmseg_excel.toy_world`` even where mmseg/mmcv cannot be imported.

``mmseg_excel/__init__.py`` registers everything into mmseg (which needs
mmcv). The toy world is pure numpy/OpenCV, so when the full package import
fails the package is bound to a bare module and only the subpackage loads.
"""
import importlib
import sys
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def import_toy_world() -> types.ModuleType:
    """Return the ``mmseg_excel.toy_world`` module."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        return importlib.import_module('mmseg_excel.toy_world')
    except ImportError:
        for name in [m for m in sys.modules if m.startswith('mmseg_excel')]:
            del sys.modules[name]
        pkg = types.ModuleType('mmseg_excel')
        pkg.__path__ = [str(REPO_ROOT / 'mmseg_excel')]
        sys.modules['mmseg_excel'] = pkg
        return importlib.import_module('mmseg_excel.toy_world')

# Copyright (c) mmseg-excel contributors. All rights reserved.
from . import hooks, schedulers  # noqa: F401

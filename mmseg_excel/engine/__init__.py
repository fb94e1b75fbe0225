# Copyright (c) mmseg-excel contributors. All rights reserved.
from . import hooks, optimizers, schedulers  # noqa: F401

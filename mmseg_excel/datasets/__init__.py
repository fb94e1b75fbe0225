# Copyright (c) mmseg-excel contributors. All rights reserved.
from . import transforms  # noqa: F401

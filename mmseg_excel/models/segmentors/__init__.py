# Copyright (c) mmseg-excel contributors. All rights reserved.
from .excel import ExCEL
from .excel_tta import ExCELTTAModel

__all__ = ['ExCEL', 'ExCELTTAModel']

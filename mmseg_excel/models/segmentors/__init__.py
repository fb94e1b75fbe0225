# Copyright (c) mmseg-excel contributors. All rights reserved.
from .clip_es import CLIPES
from .excel import ExCEL
from .excel_tta import ExCELTTAModel
from .weakclip import WeakCLIP

__all__ = ['CLIPES', 'ExCEL', 'ExCELTTAModel', 'WeakCLIP']

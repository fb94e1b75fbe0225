# Copyright (c) mmseg-excel contributors. All rights reserved.
from .excel_head import ExCELHead, predicted_affinity

__all__ = ['ExCELHead', 'predicted_affinity']

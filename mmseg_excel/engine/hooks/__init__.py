# Copyright (c) mmseg-excel contributors. All rights reserved.
from .pseudo_label_hook import PseudoLabelHook
from .rng_state_hook import ResumeRNGHook

__all__ = ['PseudoLabelHook', 'ResumeRNGHook']

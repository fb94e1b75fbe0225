# Copyright (c) mmseg-excel contributors. All rights reserved.
from .finite_loss_hook import FiniteLossHook
from .pseudo_label_hook import PseudoLabelHook
from .rng_state_hook import ResumeRNGHook

__all__ = ['FiniteLossHook', 'PseudoLabelHook', 'ResumeRNGHook']

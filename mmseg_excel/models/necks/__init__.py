# Copyright (c) mmseg-excel contributors. All rights reserved.
from .co_attention import CoAttentionMatching
from .lvc import add_lvc_shift, lvc_shift
from .pyramid_adapter import PyramidAdapter
from .svc import (SVC, block_qkv, calibrated_attention, new_path_update,
                  standard_block)

__all__ = [
    'CoAttentionMatching', 'PyramidAdapter',
    'SVC', 'block_qkv', 'calibrated_attention', 'new_path_update',
    'standard_block', 'lvc_shift', 'add_lvc_shift'
]

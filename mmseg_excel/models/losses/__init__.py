# Copyright (c) mmseg-excel contributors. All rights reserved.
from .affinity_loss import (ExCELAffinityLoss, affinity_labels_from_mask,
                            affinity_loss, window_mask)
from .balanced_ce_loss import BalancedCrossEntropyLoss, balanced_cross_entropy

__all__ = [
    'BalancedCrossEntropyLoss', 'balanced_cross_entropy', 'ExCELAffinityLoss',
    'affinity_labels_from_mask', 'affinity_loss', 'window_mask'
]

# Copyright (c) mmseg-excel contributors. All rights reserved.
from .affinity_loss import (ExCELAffinityLoss, affinity_labels_from_mask,
                            affinity_loss, window_mask)
from .balanced_ce_loss import BalancedCrossEntropyLoss, balanced_cross_entropy
from .cgl_loss import (ConfidenceGuidedLoss, cam_confidence,
                       cams_to_pseudo_label, confidence_guided_loss,
                       confidence_ignore_mask)

__all__ = [
    'BalancedCrossEntropyLoss', 'balanced_cross_entropy', 'ExCELAffinityLoss',
    'affinity_labels_from_mask', 'affinity_loss', 'window_mask',
    'ConfidenceGuidedLoss', 'cam_confidence', 'cams_to_pseudo_label',
    'confidence_guided_loss', 'confidence_ignore_mask'
]

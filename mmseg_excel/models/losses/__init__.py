# Copyright (c) mmseg-excel contributors. All rights reserved.
from .affinity_loss import (ExCELAffinityLoss, affinity_labels_from_mask,
                            affinity_loss, window_mask)
from .balanced_ce_loss import BalancedCrossEntropyLoss, balanced_cross_entropy
from .cgl_loss import (ConfidenceGuidedLoss, cam_confidence,
                       cams_to_pseudo_label, confidence_guided_loss,
                       confidence_ignore_mask)
from .seed_boundary_loss import (SeedingBoundaryLoss, boundary_loss,
                                 crf_images_uint8, cues_from_mask,
                                 floored_softmax, seeding_loss)

__all__ = [
    'SeedingBoundaryLoss', 'boundary_loss', 'crf_images_uint8',
    'cues_from_mask', 'floored_softmax', 'seeding_loss',
    'BalancedCrossEntropyLoss', 'balanced_cross_entropy', 'ExCELAffinityLoss',
    'affinity_labels_from_mask', 'affinity_loss', 'window_mask',
    'ConfidenceGuidedLoss', 'cam_confidence', 'cams_to_pseudo_label',
    'confidence_guided_loss', 'confidence_ignore_mask'
]

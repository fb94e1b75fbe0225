# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Patch-text CAMs, attention affinity (CAA), PAR, dense CRF, pseudo labels."""
from .affinity import (AttentionAffinity, box_masks_from_maps,
                       connected_components, minmax_upsample,
                       sinkhorn_affinity, sinkhorn_normalise)
from .crf import DenseCRF, clip_es_prob, mean_subtracted_uint8
from .gradcam import (SoftmaxGradCAM, clip_block_forward, minmax_twice,
                      resize_clip_pos_embed)
from .generator import (ExCELPseudoLabeler, denormalize_uint8, infer_grid,
                        present_classes, stack_cls_labels)
from .par import PAR, PixelAdaptiveRefinement
from .surgery_cam import SurgeryPatchTextMap, patch_text_maps

__all__ = [
    'SoftmaxGradCAM', 'clip_block_forward', 'minmax_twice',
    'resize_clip_pos_embed',
    'AttentionAffinity', 'box_masks_from_maps', 'connected_components',
    'minmax_upsample', 'sinkhorn_affinity', 'sinkhorn_normalise', 'DenseCRF',
    'clip_es_prob', 'mean_subtracted_uint8', 'ExCELPseudoLabeler',
    'denormalize_uint8', 'infer_grid', 'present_classes', 'stack_cls_labels',
    'PAR', 'PixelAdaptiveRefinement', 'SurgeryPatchTextMap', 'patch_text_maps'
]

# Copyright (c) mmseg-excel contributors. All rights reserved.
from .inference import (cam_classes, config_classes, infer_cams,
                        init_wsss_model,
                        load_trained_weights, pseudo_label_mode)

__all__ = [
    'cam_classes', 'config_classes', 'infer_cams', 'init_wsss_model',
    'load_trained_weights', 'pseudo_label_mode'
]

# Copyright (c) mmseg-excel contributors. All rights reserved.
from .inference import (config_classes, infer_cams, init_wsss_model,
                        load_trained_weights, pseudo_label_mode)

__all__ = [
    'config_classes', 'infer_cams', 'init_wsss_model',
    'load_trained_weights', 'pseudo_label_mode'
]

# Copyright (c) mmseg-excel contributors. All rights reserved.
from .cosine_warmup import (CosineWarmupLR, CosineWarmupParamScheduler,
                            cosine_warmup_value)
from .poly_warmup import (PolyWarmupLR, PolyWarmupParamScheduler,
                          poly_warmup_factor)

__all__ = [
    'CosineWarmupLR', 'CosineWarmupParamScheduler', 'cosine_warmup_value',
    'PolyWarmupLR', 'PolyWarmupParamScheduler', 'poly_warmup_factor'
]

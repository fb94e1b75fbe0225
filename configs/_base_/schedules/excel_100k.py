# COCO schedule (docs/methods/excel.md §8.2): 100k iterations, warmup 200,
# validation
# every 10k; otherwise as excel_30k.py.
_base_ = ['./excel_30k.py']
max_iters = 100000
param_scheduler = [
    dict(type='PolyWarmupLR', max_iters=max_iters, warmup_iters=200,
         warmup_ratio=1e-6, power=1.0, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=10000)
default_hooks = dict(
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=10000,
                    max_keep_ckpts=3))
custom_hooks = [dict(type='PseudoLabelHook', vis_interval=10000)]

# PolyWarmupAdamW of the official code (docs/methods/excel.md §8.1): AdamW lr
# 1e-4 with the
# trained head in a x10 group (effective 1e-3, official behaviour 16), linear
# warmup from
# 1e-6 over 50 iterations, then poly (power 1) NOT shifted by the warmup.
max_iters = 30000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0)}))
param_scheduler = [
    dict(type='PolyWarmupLR', max_iters=max_iters, warmup_iters=50,
         warmup_ratio=1e-6, power=1.0, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=2000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000,
                    max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
custom_hooks = [dict(type='PseudoLabelHook', vis_interval=2000)]
randomness = dict(seed=0)

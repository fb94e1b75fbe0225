# WeakCLIP optimisation (docs/methods/weakclip.md §6): AdamW 1e-4, wd 3e-5;
# custom_keys are substring matches, so the CLIP ('backbone'), the pyramid
# adapter (official: inside the backbone) and the text encoder get
# lr_mult 0 -- but the cosine floor eta_min=1e-6 is absolute, so they still
# move (official). Set adapter lr_mult=1.0 to train the adapter.
max_iters = 20000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=3e-5),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.0),
            'adapter': dict(lr_mult=0.0),
            'text_encoder': dict(lr_mult=0.0)
        }))
param_scheduler = [
    dict(type='CosineWarmupLR', max_iters=max_iters, eta_min=1e-6,
         warmup_iters=1500, warmup_ratio=1e-6, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500,
                    save_best='mIoU'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# the official step leaves two of three co-attention layers without grad
find_unused_parameters = True
randomness = dict(seed=504)

# The ExCEL schedule (excel_30k.py) scaled to the Toy World: AdamW 1e-4 with
# the head at x10, 50 warmup iterations, poly decay; 1000 iterations.
_base_ = ['./excel_30k.py']
max_iters = 1000
param_scheduler = [
    dict(type='PolyWarmupLR', max_iters=max_iters, warmup_iters=50,
         warmup_ratio=1e-6, power=1.0, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=250, max_keep_ckpts=2))
custom_hooks = [dict(type='PseudoLabelHook', vis_interval=250)]

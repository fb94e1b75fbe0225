# The Toy World's segmenter: an mmseg FCN (ResNet-18-D8, from scratch: no
# ImageNet weights offline) trained on a folder of pseudo masks of the train
# split, tested on the exact masks. tools/toy_world/report.py trains it on
# WeakCLIP's refined masks, and on the exact masks (pseudo_seg_map_dir=
# SegmentationClassAug) for the fully supervised ceiling. 1k iterations,
# batch 8, CPU-sized.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    '../_base_/datasets/toy_world_pseudo-96x96.py',
    '../_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_20k.py'
]
crop_size = (96, 96)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=512,
        channels=128,
        num_classes={{_base_.toy_num_classes}},
        norm_cfg=norm_cfg,
        loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=None)
train_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadPseudoSegMap', as_gt=True),
    dict(
        type='RandomResize',
        scale=crop_size,
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    dataset=dict(
        # set by the report: a folder of pseudo masks
        pseudo_seg_map_dir='pseudo_labels/weakclip',
        pipeline=train_pipeline))
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
         by_epoch=False)
]
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=max_iters))

# The Toy World's segmenter: an mmseg FCN (ResNet-18-D8, from scratch: no
# ImageNet weights offline) trained on a folder of pseudo masks of the train
# split, tested on the exact masks. tools/toy_world/report.py trains it on
# WeakCLIP's refined masks, and on the exact masks (pseudo_seg_map_dir=
# SegmentationClassAug) for the fully supervised ceiling. 1k iterations,
# batch 8, CPU-sized.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py'
]
classes = ('background', 'apple', 'star', 'ring', 'cross', 'heart', 'moon',
           'kite', 'fish')
crop_size = (96, 96)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=512,
        channels=128,
        num_classes=len(classes),
        norm_cfg=norm_cfg,
        loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=None)
data_root = 'data/toy_world'
train_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
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
test_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
_ds = dict(
    type='VOCLayoutWSSSDataset',
    metainfo=dict(classes=classes),
    data_root=data_root,
    img_suffix='.png',
    data_prefix=dict(img_path='JPEGImages',
                     seg_map_path='SegmentationClassAug'))
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **_ds,
        ann_file='ImageSets/Segmentation/train.txt',
        # set by the report: a folder of pseudo masks (relative to
        # data_root, or absolute)
        pseudo_seg_map_dir='pseudo_labels/weakclip',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_ds, ann_file='ImageSets/Segmentation/val.txt',
                 pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_ds, ann_file='ImageSets/Segmentation/test.txt',
                 pipeline=test_pipeline))
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
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

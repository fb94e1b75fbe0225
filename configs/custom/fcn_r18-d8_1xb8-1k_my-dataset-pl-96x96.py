# An mmseg FCN (ResNet-18-D8) trained on the pseudo masks of a custom folder
# dataset (docs/custom_dataset.md): masks written by
#   python tools/generate_pseudo_labels.py CONFIG --checkpoint CKPT \
#       --out-dir data/my_dataset/pseudo_labels/excel
# validation on the ground-truth masks. From scratch (no ImageNet weights
# offline); on real data start from configs/baselines/ (DeepLabV3+ R101,
# SegFormer) with this dataset section.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py',
    '../_base_/datasets/my_dataset_folder-96x96.py',
    '../_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_20k.py'
]
# the classes, background first (also set in the dataloaders below)
my_classes = ('background', 'apple', 'star', 'ring', 'cross', 'heart',
              'moon', 'kite', 'fish')
crop_size = (96, 96)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(
        in_channels=512,
        channels=128,
        num_classes=len(my_classes),
        norm_cfg=norm_cfg,
        loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=None)
train_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadPseudoSegMap', as_gt=True),
    dict(
        type='RandomResize',
        scale=(96, 96),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    num_workers=1,
    dataset=dict(
        metainfo=dict(classes=my_classes),
        pseudo_seg_map_dir='pseudo_labels/excel',
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(metainfo=dict(classes=my_classes), pipeline=test_pipeline))
test_dataloader = dict(
    num_workers=1,
    dataset=dict(metainfo=dict(classes=my_classes), pipeline=test_pipeline))
max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))

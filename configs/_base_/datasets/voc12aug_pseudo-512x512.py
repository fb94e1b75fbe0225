# PASCAL VOC 2012 + SBD aug for training a plain mmseg segmenter on pseudo
# masks (CLIP-ES stage 3, docs/methods/clip_es.md §7; ExCEL pseudo masks
# likewise).
#
# Training target: the pseudo mask `<data_root>/<pseudo_seg_map_dir>/<id>.png`
# written by tools/generate_pseudo_labels.py (class ids, 255 = ignored, e.g.
# low-confidence / CGL pixels), loaded into `gt_seg_map` by
# `LoadPseudoSegMap(as_gt=True)` so that PackSegInputs and the decode heads'
# CrossEntropyLoss(ignore_index=255) use it. The ground truth of the training
# split is never read. Validation / test use the ground truth.
#
# A child config sets the folder, relative to data_root:
#   train_dataloader = dict(
#       dataset=dict(pseudo_seg_map_dir='pseudo_labels/excel'))
# Augmentation follows mmseg's pascal_voc12_aug.py; `cat_max_ratio` is computed
# on the pseudo mask (no ground-truth leak). A child that changes crop_size
# or img_scale must re-declare train_pipeline / test_pipeline and the
# dataloaders' pipelines (values derived here are frozen).
dataset_type = 'VOCWSSSDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = (512, 512)
img_scale = (2048, 512)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPseudoSegMap', as_gt=True),
    dict(
        type='RandomResize',
        scale=img_scale,
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
# ground truth loaded after the resize: metrics at the original resolution
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(
        type='TestTimeAug',
        transforms=[
            [
                dict(type='Resize', scale_factor=r, keep_ratio=True)
                for r in img_ratios
            ],
            [
                dict(type='RandomFlip', prob=0., direction='horizontal'),
                dict(type='RandomFlip', prob=1., direction='horizontal')
            ], [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]
        ])
]
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        # set by the child config (output folder of
        # tools/generate_pseudo_labels.py, relative to data_root)
        pseudo_seg_map_dir=None,
        pseudo_seg_map_suffix='.png',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

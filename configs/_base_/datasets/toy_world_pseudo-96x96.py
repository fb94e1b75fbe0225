# The Toy World for models trained on a folder of pseudo masks of the train
# split (WeakCLIP, the FCN segmenter): `LoadPseudoSegMap(as_gt=True)` puts
# the mask into `gt_seg_map`; val / test use the exact masks. A child sets
# train_dataloader.dataset.pseudo_seg_map_dir (relative to data_root, or
# absolute); a child that changes train_pipeline re-sets
# train_dataloader.dataset.pipeline (values derived here are frozen).
toy_classes = ('background', 'apple', 'star', 'ring', 'cross', 'heart',
               'moon', 'kite', 'fish')
toy_num_classes = len(toy_classes)
data_root = 'data/toy_world'
train_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadPseudoSegMap', as_gt=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
_ds = dict(
    type='VOCLayoutWSSSDataset',
    metainfo=dict(classes=toy_classes),
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
        pseudo_seg_map_dir='pseudo_labels/excel',
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

# The Toy World (tools/toy_world/make_dataset.py): 96x96 PNG images in the VOC
# layout, 8 object classes on 5 background "stuff" textures. Training samples
# carry image-level labels only (from cls_labels.json: masks are never read);
# val/test keep the exact masks for evaluation.
dataset_type = 'VOCLayoutWSSSDataset'
data_root = 'data/toy_world'
crop_size = (96, 96)
toy_metainfo = dict(classes=('background', 'apple', 'star', 'ring', 'cross',
                             'heart', 'moon', 'kite', 'fish'))
train_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadImageLevelLabels', keep_mask=False),
    dict(
        type='RandomRescale',
        ratio_range=(0.75, 1.5),
        backend='pillow',
        interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomOffsetPad', size=crop_size, pad_val=0, seg_pad_val=255),
    dict(type='PackWSSSInputs'),
]
# No Resize: the model's WSSSDataPreProcessor normalises each image at its
# original size and resizes the normalised tensor to the square network size
# (test_size), as the official scripts do (docs/evaluation.md); predictions
# and pseudo labels come back at the original size, where the GT is scored.
test_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadImageLevelLabels', keep_mask=True),
    dict(type='PackWSSSInputs'),
]
# ms + flip views are made on the device by ExCELTTAModel from this
tta_pipeline = test_pipeline
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        metainfo=toy_metainfo,
        data_root=data_root,
        img_suffix='.png',
        cls_labels_file='cls_labels.json',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        metainfo=toy_metainfo,
        data_root=data_root,
        img_suffix='.png',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/val.txt',
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        metainfo=toy_metainfo,
        data_root=data_root,
        img_suffix='.png',
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/test.txt',
        pipeline=test_pipeline))
# pseudo labels of the training-free mode are scored on the test split
pseudo_label_dataloader = test_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

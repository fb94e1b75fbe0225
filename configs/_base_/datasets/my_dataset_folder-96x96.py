# A custom WSSS dataset as a folder (docs/custom_dataset.md): images, a CSV
# of image-level labels per split and, for scoring only, masks. Copy this
# file, set data_root and the classes (background first), and keep the
# pipelines (training reads the labels only, never the masks).
#
#   data/my_dataset/images/*.png      labels_train.csv  image,labels
#   data/my_dataset/masks/*.png       labels_val.csv    (class names, ';')
#                                     labels_test.csv
#
# The walk-through presents the Toy World this way:
#   python tools/toy_world/make_dataset.py --out data/my_dataset --layout folder
dataset_type = 'WSSSFolderDataset'
data_root = 'data/my_dataset'
crop_size = (96, 96)
my_classes = ('background', 'apple', 'star', 'ring', 'cross', 'heart',
              'moon', 'kite', 'fish')
my_metainfo = dict(classes=my_classes)
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
test_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadImageLevelLabels', keep_mask=True),
    dict(type='PackWSSSInputs'),
]
tta_pipeline = test_pipeline
# pseudo labels of the training images, scored where a mask exists
pseudo_label_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadImageLevelLabels', keep_mask='auto'),
    dict(type='PackWSSSInputs'),
]


folder = dict(
    type=dataset_type,
    metainfo=my_metainfo,
    data_root=data_root,
    data_prefix=dict(img_path='images', seg_map_path='masks'))
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        folder, labels_file='labels_train.csv', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        folder, labels_file='labels_val.csv', pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        folder, labels_file='labels_test.csv', pipeline=test_pipeline))
# tools/generate_pseudo_labels.py (default --split pseudo_label) writes the
# masks a baseline trains on: the training images, un-augmented
pseudo_label_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        folder, labels_file='labels_train.csv',
        pipeline=pseudo_label_pipeline))
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

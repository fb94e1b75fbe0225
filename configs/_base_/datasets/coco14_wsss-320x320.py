# MS COCO 2014 (VOC-style masks, 81 classes incl. background) for weakly
# supervised segmentation (ExCEL, docs/methods/excel.md §8.1-8.2). Training
# samples carry
# image-level labels only (`gt_cls_label`, multi-hot over 80 classes); COCO
# crops are drawn without labels (no cat_max_ratio). Normalisation is done by
# the model's SegDataPreProcessor.
#
# Layout under data_root:
#   JPEGImages/{train,val}/COCO_{train,val}2014_<12 digits>.jpg
#   SegmentationClass/{train,val}/<12 digits>.png
#   ImageSets/{train,val}.txt   (full image names; train = 82 081 images
#                                with >= 1 annotation, val = 40 137)
# Image-level labels (`label_source`, default 'auto'): the official label
# list (CLIP-ES coco14/train.txt, "<name>.jpg <0-based ids>" per line) when
# `label_list_file='coco14/train.txt'` is set in the training dataset (or the
# split file carries the ids); else derived from the masks. Or read a labels
# file (JSON, or the official cls_labels_onehot.npy of ExCEL) written by
#   python tools/dataset_converters/coco_image_labels.py data/coco2014 \
#       --split train --label-list coco14/train.txt \
#       --out data/coco2014/cls_labels_onehot.npy
# with `cls_labels_file='cls_labels_onehot.npy'` in the datasets below.
dataset_type = 'COCOWSSSDataset'
data_root = 'data/coco2014'
crop_size = (320, 320)
train_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadImageLevelLabels', keep_mask=False),
    dict(
        type='RandomRescale',
        ratio_range=(0.5, 2.0),
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
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/train.txt',
        pipeline=train_pipeline))
# training-time validation: the first 5 000 images of val
# (docs/methods/excel.md §8.2)
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/val.txt',
        indices=5000,
        pipeline=test_pipeline))
# final evaluation: the full val split (40 137 images)
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/val.txt',
        pipeline=test_pipeline))

val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

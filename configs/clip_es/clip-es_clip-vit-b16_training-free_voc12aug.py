# CLIP-ES pseudo masks for PASCAL VOC 2012 train_aug (10 582 images):
#   python tools/generate_pseudo_labels.py THIS_CONFIG \
#       --out-dir data/VOCdevkit/VOC2012/pseudo_labels/clip-es
# (CRF + confidence ignoring is done by the model; do NOT pass --crf.)
# Pseudo-mask quality on VOC train (1 464, paper 75.0 with dCRF):
#   ... --split val --cfg-options \
#       val_dataloader.dataset.ann_file=ImageSets/Segmentation/train.txt \
#       model.crf.confidence_threshold=None
_base_ = [
    '../_base_/models/clip-es_clip-vit-b16.py',
    '../_base_/datasets/voc12aug_wsss-320x320.py',
    '../_base_/default_runtime.py'
]
# TODO: drop the second import once segmentors/__init__.py imports CLIPES
custom_imports = dict(
    imports=['mmseg_excel', 'mmseg_excel.models.segmentors.clip_es'],
    allow_failed_imports=False)
# images keep their own sizes (no Resize); labels from the masks
clip_es_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadImageLevelLabels', keep_mask=True),
    dict(type='PackWSSSInputs'),
]
pseudo_label_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train_aug.txt',
        pipeline=clip_es_pipeline))
val_dataloader = dict(
    batch_size=1,
    dataset=dict(
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline=clip_es_pipeline))
test_dataloader = val_dataloader
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

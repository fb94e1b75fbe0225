# CLIP-ES pseudo masks for COCO 2014 train (82 081 images with labels):
#   python tools/generate_pseudo_labels.py THIS_CONFIG \
#       --out-dir data/coco2014/pseudo_labels/clip-es
# COCO: synonym-fused COCO names, M = 23 background prompts, box λ = 0.7.
_base_ = [
    '../_base_/models/clip-es_clip-vit-b16.py',
    '../_base_/datasets/coco14_wsss-320x320.py',
    '../_base_/default_runtime.py'
]
# TODO: drop the second import once segmentors/__init__.py imports CLIPES
custom_imports = dict(
    imports=['mmseg_excel', 'mmseg_excel.models.segmentors.clip_es'],
    allow_failed_imports=False)
model = dict(
    class_names='coco_clip_es',
    bg_names='coco',
    affinity=dict(box_threshold=0.7))
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
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/train.txt',
        pipeline=clip_es_pipeline))
val_dataloader = dict(batch_size=1, dataset=dict(pipeline=clip_es_pipeline))
test_dataloader = val_dataloader
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# ExCEL on COCO 2014 (EXCEL.md §8.2, COCO column): 81 classes, 224 attribute
# clusters, box threshold 0.88, LVC from 30k, affinity target never switched.
_base_ = [
    '../_base_/models/excel_clip-vit-b16.py',
    '../_base_/datasets/coco14_wsss-320x320.py',
    '../_base_/default_runtime.py', '../_base_/schedules/excel_100k.py'
]
model = dict(
    text_head=dict(
        class_names='coco_excel',
        bg_names='coco',
        tse=dict(
            descriptions='mmseg_excel/data/descriptions/coco.json',
            num_clusters=224)),
    cam_head=dict(num_fg=80),
    pseudo_labeler=dict(affinity=dict(box_threshold=0.88)),
    decode_head=dict(num_classes=81),
    lvc_start_iter=30000,
    aff_target_switch_iter=None)
tta_scales = [224, 320, 384, 480]
tta_pipeline = [
    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
    dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='Resize', scale=(s, s), keep_ratio=False)
            for s in tta_scales
        ], [
            dict(type='RandomFlip', prob=0., direction='horizontal'),
            dict(type='RandomFlip', prob=1., direction='horizontal')
        ], [dict(type='LoadImageLevelLabels', keep_mask=True)],
                    [dict(type='PackWSSSInputs')]])
]
# logit mean over views, softmax, dense CRF
tta_model = dict(type='ExCELTTAModel', crf={{_base_.crf}},)

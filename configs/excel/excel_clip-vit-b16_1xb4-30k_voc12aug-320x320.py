# ExCEL on PASCAL VOC 2012 + SBD aug (EXCEL.md §8.2, VOC column).
_base_ = [
    '../_base_/models/excel_clip-vit-b16.py',
    '../_base_/datasets/voc12aug_wsss-320x320.py',
    '../_base_/default_runtime.py', '../_base_/schedules/excel_30k.py'
]
model = dict(
    pseudo_labeler=dict(affinity=dict(box_threshold=0.79)),
    lvc_start_iter=14000,
    aff_target_switch_iter=24000)
# official square scales 224/320/384/480 (0.7/1.0/1.2/1.5 of 320) + flip
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
# logit mean over views, softmax, dense CRF ; VOC discards the flipped view
# at scale 1.0 (quirk 19)
tta_model = dict(type='ExCELTTAModel', crf={{_base_.crf}},
    drop_flip_at_scale=(320, 320))

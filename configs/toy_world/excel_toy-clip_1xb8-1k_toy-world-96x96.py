# ExCEL (full: SVC + TSE + LVC) on the Toy World with the shipped toy CLIP:
# the embedded default that README command 1 trains and evaluates.
_base_ = [
    '../_base_/models/excel_toy-clip.py',
    '../_base_/datasets/toy_world_wsss-96x96.py',
    '../_base_/default_runtime.py', '../_base_/schedules/excel_toy_1k.py'
]
train_dataloader = dict(num_workers=1)
val_dataloader = dict(num_workers=1)
test_dataloader = dict(num_workers=1)
pseudo_label_dataloader = test_dataloader
# the official multi-scale + flip protocol at 0.7/1.0/1.2/1.5 of the crop
# (multiples of the 8-pixel patch), logit mean, softmax, dense CRF
tta_scales = [64, 96, 112, 144]
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
tta_model = dict(type='ExCELTTAModel', crf={{_base_.crf}})

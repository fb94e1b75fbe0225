# Reference, not WSSS: the ExCEL decoder on the same frozen toy CLIP, same
# schedule and augmentation, trained on the EXACT masks of the training split
# instead of the online pseudo labels: the fully supervised ceiling of the
# decoder that ExCEL trains.
_base_ = ['./excel_toy-clip_1xb8-1k_toy-world-96x96.py']
model = dict(mask_supervision=True)
train_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadImageLevelLabels', keep_mask=True),
    dict(
        type='RandomRescale',
        ratio_range=(0.75, 1.5),
        backend='pillow',
        interpolation='bilinear'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size={{_base_.crop_size}}),
    dict(type='RandomOffsetPad', size={{_base_.crop_size}}, pad_val=0,
         seg_pad_val=255),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

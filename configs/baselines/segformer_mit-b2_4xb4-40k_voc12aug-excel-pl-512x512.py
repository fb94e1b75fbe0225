# SegFormer MiT-B2 trained on ExCEL pseudo masks, validation on the VOC ground
# truth. mmseg ships no SegFormer VOC config: the model and the AdamW recipe
# are those of mmseg's segformer_mit-b2_8xb2-160k_ade20k-512x512 (same total
# batch of 16), with the 40k schedule. Pseudo masks:
# data/VOCdevkit/VOC2012/pseudo_labels/excel.
_base_ = [
    'mmseg::_base_/models/segformer_mit-b0.py',
    '../_base_/datasets/voc12aug_pseudo-512x512.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
checkpoint = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/segformer/mit_b2_20220624-66e8bf70.pth'  # noqa
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint),
        embed_dims=64,
        num_heads=[1, 2, 5, 8],
        num_layers=[3, 4, 6, 3]),
    # mean over kept pixels (the pseudo masks' 255 share must not scale it)
    decode_head=dict(
        in_channels=[64, 128, 320, 512],
        num_classes=21,
        ignore_index=255,
        loss_decode=dict(avg_non_ignore=True)))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'pos_block': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'head': dict(lr_mult=10.)
        }))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=40000,
        by_epoch=False)
]
train_dataloader = dict(dataset=dict(pseudo_seg_map_dir='pseudo_labels/excel'))

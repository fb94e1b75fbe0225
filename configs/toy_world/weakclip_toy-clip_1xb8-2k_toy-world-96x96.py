# WeakCLIP on the Toy World with the shipped toy CLIP, trained on pseudo
# masks of the train split (default: ExCEL's, written by
# tools/generate_pseudo_labels.py into data/toy_world/pseudo_labels/excel),
# validated on the exact masks. 2k iterations, batch 8, CPU-sized (~9 min on
# 2 cores; with 1k the val mIoU was still rising: 32.5 at 1k against 36.0 at
# 1k and 36.6 at 2k of this schedule, seed 0).
_base_ = [
    '../_base_/models/weakclip_clip-vit-b16.py',
    '../_base_/datasets/toy_world_pseudo-96x96.py',
    '../_base_/default_runtime.py', '../_base_/schedules/weakclip_20k.py'
]
toy_clip = dict(
    model_name='mmseg_excel/data/toy_clip/toy_clip.json',
    pretrained='mmseg_excel/data/toy_clip/toy_clip.pt')
classes = {{_base_.toy_classes}}
num_classes = {{_base_.toy_num_classes}}
crop = (96, 96)
max_iters = 2000
model = dict(
    # the toy CLIP was pretrained with CLIP's mean/std
    data_preprocessor=dict(
        mean=[122.7709383, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        size=crop),
    backbone=dict(**toy_clip, out_indices=(0, 1, 2, 3), pos_embed_grid=None),
    adapter=dict(norm_cfg=dict(type='BN')),
    text_encoder=dict(**toy_clip, context_length=13),
    context_decoder=dict(width=32, num_heads=2),
    neck=dict(out_channels=32),
    decode_head=dict(in_channels=[32] * 4, channels=32,
                     num_classes=num_classes, norm_cfg=dict(type='BN')),
    class_names=classes,
    loss_size=(12, 12),
    seg_loss=dict(crf=dict(num_workers=0)),  # 12x12 CRFs: not worth a pool
    # refinement views: scale 1.0 + flip. The toy train pipeline has no
    # scale augmentation and the model does not transfer across scales
    # (val split, 250 images, no CRF: 1.0 + flip 33.2 mIoU; ratios
    # 0.75 / 1.0 / 1.25 + flip 27.7 on the train split against 34.7 there)
    test_cfg=dict(_delete_=True, mode='whole', aug_ratios=[1.0],
                  aug_flip=True))
param_scheduler = [
    dict(type='CosineWarmupLR', max_iters=max_iters, eta_min=1e-6,
         warmup_iters=50, warmup_ratio=1e-6, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=500)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=500, save_best='mIoU'))
# refinement (tools/generate_pseudo_labels.py --checkpoint CKPT --crf):
# flip-averaged probabilities of the classes present in the argmax
# (model.test_cfg aug_ratios / aug_flip), then this dense CRF. Its bilateral
# kernel is chosen on the val split (exact masks) for 96-px textured scenes:
# VOC's (sxy 83, srgb 5, compat 3) follows the brick and checker textures
# and scored 33.0 mIoU there (no CRF 33.2); sxy 20, srgb 13, compat 4: 35.7
crf = dict(type='DenseCRF', iter_max=10, pos_xy_std=3, pos_w=3, bi_xy_std=20,
           bi_rgb_std=13, bi_w=4)

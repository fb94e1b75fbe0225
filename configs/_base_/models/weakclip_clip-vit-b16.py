# WeakCLIP with OpenAI CLIP ViT-B/16 (docs/methods/weakclip.md): 512x512
# crops (32x32 patch grid), VOC's 21 classes. A child config for another
# class count sets class_names and decode_head.num_classes; the adapter,
# co-attention and FPN input widths follow the CLIP (None: 768, 512,
# 768 + K).
num_classes = 21
_crop = (512, 512)
clip_pretrained = 'openai'  # or a local ViT-B-16.pt (any weight format)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=_crop)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='WeakCLIP',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='CLIPViTBackbone',
        model_name='ViT-B-16',
        pretrained=clip_pretrained,
        svc=None,
        frozen=False,  # official: every CLIP weight gets an lr (min_lr floor)
        out_indices=(3, 5, 7, 11),
        drop_path_rate=0.1,
        class_token_twice=True,
        pos_embed_grid=32,  # crop / patch, resized once at load time
        drop_remainder=True),  # unpadded test views
    adapter=dict(type='PyramidAdapter', in_channels=None,
                 scales=(4, 2, 1, 0.5), norm_cfg=norm_cfg),
    text_encoder=dict(
        type='CLIPTextContextEncoder',
        model_name='ViT-B-16',
        pretrained=clip_pretrained,
        context_length=13),  # 5 name tokens + 8 learnable vectors
    context_decoder=dict(
        type='CoAttentionMatching',
        visual_dim=None,
        width=256,
        num_heads=4,
        num_layers=3,
        dropout=0.1,
        decouple=True,
        chain_layers=False),  # official loop: only the last layer counts
    # construction-time init as the official training (no init_weights)
    neck=dict(
        type='FPN',
        in_channels=None,
        out_channels=256,
        num_outs=4,
        init_cfg=None),
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=256,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        init_cfg=None,
        loss_decode=dict(type='CrossEntropyLoss')),  # unused (seg_loss)
    class_names=('background', 'aeroplane', 'bicycle', 'bird', 'boat',
                 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
                 'diningtable', 'dog', 'horse', 'motorbike', 'person',
                 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'),
    name_context_length=5,
    tau=0.07,
    seg_loss=dict(
        type='SeedingBoundaryLoss',
        # num_workers: the batch's CRFs in a process pool (0: on the
        # training thread; same posteriors)
        crf=dict(type='DenseCRF', iter_max=10, pos_xy_std=3, pos_w=3,
                 bi_xy_std=80, bi_rgb_std=13, bi_w=10, num_workers=4)),
    identity_loss=dict(type='CrossEntropyLoss', loss_weight=0.4,
                       avg_non_ignore=False),
    loss_size=(64, 64),  # crop / 8
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=_crop, stride=(341, 341)))

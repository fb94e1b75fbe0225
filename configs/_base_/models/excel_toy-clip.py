# ExCEL on the shipped Toy-World CLIP (mmseg_excel/data/toy_clip/): the same
# components as configs/_base_/models/excel_clip-vit-b16.py, sized for a
# 4-block ViT of width 64 with 8x8 patches (12x12 tokens on 96x96 images).
toy_clip = dict(
    model_name='mmseg_excel/data/toy_clip/toy_clip.json',  # open_clip JSON
    pretrained='mmseg_excel/data/toy_clip/toy_clip.pt',
    cache_dir=None)
toy_classes = ['apple', 'star', 'ring', 'cross', 'heart', 'moon', 'kite',
               'fish']
toy_backgrounds = ['grass', 'sky', 'water', 'brick', 'sand']
data_preprocessor = dict(
    type='SegDataPreProcessor',
    # the toy CLIP was pretrained with CLIP's mean/std (tools/toy_world/
    # pretrain_clip.py), so those are its input statistics
    mean=[122.7709383, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=8)
model = dict(
    type='ExCEL',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='CLIPViTBackbone',
        **toy_clip,
        # surgery on the last 2 of 4 blocks (ViT-B/16: 5 of 12)
        svc=dict(type='SVC', num_blocks=2),
        clean_layer_feats=False),
    text_head=dict(
        type='ExCELTextHead',
        clip=toy_clip,
        class_names=toy_classes,
        bg_names=toy_backgrounds,
        templates=['a clean origami {}.'],
        tse=dict(
            descriptions='mmseg_excel/data/descriptions/toy.json',
            # 160 sentences; VOC clusters 400 sentences into 112
            num_clusters=48,
            keep_ratio=0.9,
            seed=0,
            cache_dir='work_dirs/attribute_banks')),
    cam_head=dict(type='SurgeryPatchTextMap', num_fg=8, temperature=2.0),
    pseudo_labeler=dict(
        type='ExCELPseudoLabeler',
        affinity=dict(num_layers=2, box_threshold=0.79, sinkhorn_iters=3,
                      power=2),
        # PAR dilations scaled to 96-px images (VOC: 1..24 px at 320 px)
        par=dict(dilations=(1, 2, 4, 8), num_iter=20, w1=0.3,
                 w2=0.01),
        bg_power=1.0),
    decode_head=dict(
        type='ExCELHead',
        in_channels=64,
        channels=64,
        num_classes=9,
        num_layers=4,
        num_decoder_layers=1,
        num_heads=4,
        dropout_ratio=0.1,
        aff_gamma=3.0,
        loss_decode=dict(type='BalancedCrossEntropyLoss', loss_weight=1.0),
        loss_aff=dict(type='ExCELAffinityLoss', radius=4, loss_weight=0.1)),
    lvc_start_iter=470,
    aff_target_switch_iter=800,
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
crf = dict(type='DenseCRF', iter_max=10, pos_xy_std=1, pos_w=3, bi_xy_std=67,
           bi_rgb_std=3, bi_w=4, image_mode='rgb')

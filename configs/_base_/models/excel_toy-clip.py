# ExCEL on the shipped Toy-World CLIP (mmseg_excel/data/toy_clip/): the
# components of excel_clip-vit-b16.py, sized for a 4-block ViT of width 64
# on a 12x12 token grid (conv stem, 96x96 images). Only sizes change here.
_base_ = ['./excel_clip-vit-b16.py']
toy_clip = dict(
    model_name='mmseg_excel/data/toy_clip/toy_clip.json',  # open_clip JSON
    pretrained='mmseg_excel/data/toy_clip/toy_clip.pt',
    cache_dir=None)
data_preprocessor = dict(
    # the toy CLIP was pretrained with CLIP's mean/std (tools/toy_world/
    # pretrain_clip.py), so those are its input statistics
    mean=[122.7709383, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    size_divisor=8,
    test_size=(96, 96))
model = dict(
    data_preprocessor=data_preprocessor,
    # surgery on the last 2 of 4 blocks (ViT-B/16: 5 of 12)
    backbone=dict(**toy_clip, svc=dict(num_blocks=2)),
    text_head=dict(
        clip=toy_clip,
        class_names=['apple', 'star', 'ring', 'cross', 'heart', 'moon',
                     'kite', 'fish'],
        bg_names=['grass', 'sky', 'water', 'brick', 'sand'],
        # 160 sentences; VOC clusters 400 sentences into 112
        tse=dict(
            descriptions='mmseg_excel/data/descriptions/toy.json',
            num_clusters=48)),
    cam_head=dict(num_fg=8),
    pseudo_labeler=dict(
        affinity=dict(num_layers=2),
        # PAR dilations scaled to 96-px images (VOC: 1..24 px at 320 px)
        par=dict(dilations=(1, 2, 4, 8))),
    decode_head=dict(
        in_channels=64,
        channels=64,
        num_classes=9,
        num_layers=4,
        num_decoder_layers=1,
        num_heads=4,
        loss_aff=dict(radius=4)),
    lvc_start_iter=470,
    aff_target_switch_iter=800)

# CLIP-ES (training-free: Softmax-GradCAM, CAA, dense CRF) on the Toy World
# with the shipped toy CLIP; pseudo masks are scored on the test split by
#   python tools/generate_pseudo_labels.py THIS_CONFIG --out-dir DIR
_base_ = [
    '../_base_/models/clip-es_clip-vit-b16.py',
    '../_base_/datasets/toy_world_wsss-96x96.py',
    '../_base_/default_runtime.py'
]
toy_clip = dict(
    model_name='mmseg_excel/data/toy_clip/toy_clip.json',
    pretrained='mmseg_excel/data/toy_clip/toy_clip.pt',
    cache_dir=None)
data_preprocessor = dict(size_divisor=8)
model = dict(
    data_preprocessor=data_preprocessor,
    clip=toy_clip,
    class_names=['apple', 'star', 'ring', 'cross', 'heart', 'moon', 'kite',
                 'fish'],
    bg_names=['grass', 'sky', 'water', 'brick', 'sand'],
    # the last 2 of 4 blocks (ViT-B/16: 8 of 12)
    gradcam=dict(num_attn_layers=2, pos_embed_fp16_round=True),
    affinity=dict(num_layers=2, box_threshold=0.4, sinkhorn_iters=3, power=2),
    # scores are compared with the exact masks: no confidence ignoring
    crf=dict(confidence_threshold=None),
    test_cfg=dict(input_source='file', predict_ignore=False))
clip_es_pipeline = [
    dict(type='LoadWSSSImageFromFile', imdecode_backend='pillow'),
    dict(type='LoadImageLevelLabels', keep_mask=True),
    dict(type='PackWSSSInputs'),
]
test_dataloader = dict(
    batch_size=1, num_workers=1, dataset=dict(pipeline=clip_es_pipeline))
val_dataloader = test_dataloader
pseudo_label_dataloader = test_dataloader
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# CLIP-ES (docs/methods/clip_es.md §1-6): frozen OpenAI CLIP ViT-B/16,
# Softmax-GradCAM,
# class-aware attention affinity (CAA) and dense CRF with confidence-guided
# ignoring (255). Training-free: used by tools/generate_pseudo_labels.py.
# `CLIPES` is registered by mmseg_excel.models.segmentors.clip_es (imported by
# the configs under configs/clip_es/ until segmentors/__init__.py does).
clip_source = dict(model_name='ViT-B-16', pretrained='openai', cache_dir=None)
# The model re-reads each image (test_cfg.input_source='file') and applies the
# official transform: PIL bicubic to (ceil(H/16)*16, ceil(W/16)*16), CLIP
# mean/std. The preprocessor below gives the same normalisation for
# input_source='inputs' (then resized in torch, bicubic + antialias).
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709383, 116.7460125, 104.09373615],  # CLIP mean * 255 (RGB)
    std=[68.5005327, 66.6321579, 70.32316305],  # CLIP std * 255
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=16)
model = dict(
    type='CLIPES',
    data_preprocessor=data_preprocessor,
    clip=clip_source,
    class_names='voc_clip_es',  # synonym-fused names (§2.1)
    bg_names='voc',  # M = 25 class-related background prompts
    templates=['a clean origami {}.'],
    gradcam=dict(num_attn_layers=8, pos_embed_fp16_round=True),
    affinity=dict(num_layers=8, box_threshold=0.4, sinkhorn_iters=3, power=2),
    bg_power=1.0,
    crf=dict(
        iter_max=10,
        pos_xy_std=1,
        pos_w=3,
        bi_xy_std=67,
        bi_rgb_std=3,
        bi_w=4,
        # official behaviour 7 (docs/methods/clip_es.md §6.2): BGR minus mean,
        # cast to uint8 with wrap-around
        image_mode='clip_es',
        wrap_uint8=True,
        unary_dtype='float16',
        confidence_threshold=0.95,
        ignore_index=255),
    test_cfg=dict(input_source='file', predict_ignore=False))

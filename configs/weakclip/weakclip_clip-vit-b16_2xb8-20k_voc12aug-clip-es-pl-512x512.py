# WeakCLIP refinement network trained on clip-es pseudo masks of VOC train_aug
# (docs/methods/weakclip.md), validated on the VOC ground truth; 2 GPUs x 8.
# Pseudo masks: data/VOCdevkit/VOC2012/pseudo_labels/clip_es, written by
# tools/generate_pseudo_labels.py.
_base_ = [
    '../_base_/models/weakclip_clip-vit-b16.py',
    '../_base_/datasets/voc12aug_pseudo-512x512.py',
    '../_base_/default_runtime.py', '../_base_/schedules/weakclip_20k.py'
]
train_dataloader = dict(
    batch_size=8,
    dataset=dict(pseudo_seg_map_dir='pseudo_labels/clip_es'))
tta_model = dict(type='SegTTAModel')
model = dict(
    test_cfg=dict(aug_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75], aug_flip=True))
# refinement (tools/generate_pseudo_labels.py --checkpoint CKPT --crf):
# ms + flip probabilities of the present classes (model.test_cfg
# aug_ratios / aug_flip), then this dense CRF
crf = dict(type='DenseCRF', iter_max=10, pos_xy_std=3, pos_w=3, bi_xy_std=83,
           bi_rgb_std=5, bi_w=3)

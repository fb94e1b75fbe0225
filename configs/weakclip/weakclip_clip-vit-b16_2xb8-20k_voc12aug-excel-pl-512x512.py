# WeakCLIP refinement network trained on excel pseudo masks of VOC train_aug
# (docs/methods/weakclip.md), validated on the VOC ground truth; 2 GPUs x 8.
# Pseudo masks: data/VOCdevkit/VOC2012/pseudo_labels/excel, written by
# tools/generate_pseudo_labels.py.
_base_ = [
    '../_base_/models/weakclip_clip-vit-b16.py',
    '../_base_/datasets/voc12aug_pseudo-512x512.py',
    '../_base_/default_runtime.py', '../_base_/schedules/weakclip_20k.py'
]
train_dataloader = dict(
    batch_size=8,
    dataset=dict(pseudo_seg_map_dir='pseudo_labels/excel'))
tta_model = dict(type='SegTTAModel')

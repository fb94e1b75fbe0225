# WeakCLIP refinement network trained on CLIP-ES pseudo masks of VOC train_aug
# (docs/methods/weakclip.md), validated on the VOC ground truth; 2 GPUs x 8.
# Pseudo masks: data/VOCdevkit/VOC2012/pseudo_labels/clip_es, written by
# tools/generate_pseudo_labels.py. Everything else as the ExCEL-mask config.
_base_ = ['./weakclip_clip-vit-b16_2xb8-20k_voc12aug-excel-pl-512x512.py']
train_dataloader = dict(dataset=dict(pseudo_seg_map_dir='pseudo_labels/clip_es'))

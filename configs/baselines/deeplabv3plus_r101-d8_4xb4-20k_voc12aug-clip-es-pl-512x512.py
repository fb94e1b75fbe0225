# DeepLabV3+ R101-D8 trained on CLIP-ES pseudo masks (docs/methods/clip_es.md
# §7 uses
# DeepLabV2; this is the mmseg baseline). Pseudo masks:
# data/VOCdevkit/VOC2012/pseudo_labels/clip-es.
_base_ = ['./deeplabv3plus_r101-d8_4xb4-20k_voc12aug-excel-pl-512x512.py']
train_dataloader = dict(
    dataset=dict(pseudo_seg_map_dir='pseudo_labels/clip-es'))

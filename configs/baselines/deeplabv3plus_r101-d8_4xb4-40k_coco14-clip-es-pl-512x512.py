# DeepLabV3+ R101-D8 on COCO 2014 trained on CLIP-ES pseudo masks
# (data/coco2014/pseudo_labels/clip-es).
_base_ = ['./deeplabv3plus_r101-d8_4xb4-40k_coco14-excel-pl-512x512.py']
train_dataloader = dict(
    dataset=dict(pseudo_seg_map_dir='pseudo_labels/clip-es'))

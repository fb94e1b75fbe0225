# SegFormer MiT-B2 trained on CLIP-ES pseudo masks
# (data/VOCdevkit/VOC2012/pseudo_labels/clip-es).
_base_ = ['./segformer_mit-b2_4xb4-40k_voc12aug-excel-pl-512x512.py']
train_dataloader = dict(
    dataset=dict(pseudo_seg_map_dir='pseudo_labels/clip-es'))

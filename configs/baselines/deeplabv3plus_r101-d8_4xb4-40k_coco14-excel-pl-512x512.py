# DeepLabV3+ R101-D8 on COCO 2014 (81 classes incl. background) trained on
# ExCEL pseudo masks; validation on the ground truth. Pseudo masks:
# data/coco2014/pseudo_labels/excel.
_base_ = [
    'mmseg::_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/coco14_pseudo-512x512.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py'
]
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    # Mean over the kept pixels: pseudo masks ignore (255) a varying share of
    # each batch, which must not scale the loss (mmseg's default divides the
    # sum over kept pixels by all pixels).
    # (merged into mmseg's CrossEntropyLoss of each head, weights 1.0 / 0.4).
    decode_head=dict(
        num_classes=81, ignore_index=255,
        loss_decode=dict(avg_non_ignore=True)),
    auxiliary_head=dict(
        num_classes=81, ignore_index=255,
        loss_decode=dict(avg_non_ignore=True)))
train_dataloader = dict(dataset=dict(pseudo_seg_map_dir='pseudo_labels/excel'))

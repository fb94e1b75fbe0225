# WeakCLIP on COCO 2014 trained on ExCEL pseudo masks (81 contiguous ids:
# background + the 80 COCO classes, the convention of our exports), 4 GPUs x
# 6, 40k iterations (docs/methods/weakclip.md). The official code lists the
# 91-entry COCO id names instead; with contiguous masks that misaligns names
# and ids from index 12 on, so this config uses the 81 dataset classes.
_base_ = [
    '../_base_/models/weakclip_clip-vit-b16.py',
    '../_base_/datasets/coco14_pseudo-512x512.py',
    '../_base_/default_runtime.py', '../_base_/schedules/weakclip_20k.py'
]
from mmseg_excel.datasets.coco_wsss import COCO_WSSS_CLASSES  # noqa: E402

num_classes = len(COCO_WSSS_CLASSES)
max_iters = 40000
model = dict(
    class_names=COCO_WSSS_CLASSES,
    decode_head=dict(num_classes=num_classes),
    test_cfg=dict(aug_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75], aug_flip=True))
param_scheduler = [
    dict(type='CosineWarmupLR', max_iters=max_iters, eta_min=1e-6,
         warmup_iters=1500, warmup_ratio=1e-6, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters)
train_dataloader = dict(
    batch_size=6, dataset=dict(pseudo_seg_map_dir='pseudo_labels/excel'))
tta_model = dict(type='SegTTAModel')
# refinement (tools/generate_pseudo_labels.py --checkpoint CKPT --crf):
# ms + flip probabilities of the present classes (model.test_cfg
# aug_ratios / aug_flip), then this dense CRF
crf = dict(type='DenseCRF', iter_max=10, pos_xy_std=1, pos_w=3, bi_xy_std=67,
           bi_rgb_std=3, bi_w=4)

# ExCEL on PASCAL VOC 2012 + SBD aug (paper settings, VOC column of docs/evaluation.md).
_base_ = [
    '../_base_/models/excel_clip-vit-b16.py',
    '../_base_/datasets/voc12aug_wsss-320x320.py',
    '../_base_/default_runtime.py', '../_base_/schedules/excel_30k.py'
]
model = dict(
    test_cfg=dict(
        mode='whole',
        lvc_norm_eps=1e-5,
        val_pseudo_labels=dict(box_threshold=0.75)),
    pseudo_labeler=dict(affinity=dict(box_threshold=0.79)),
    lvc_start_iter=14000,
    aff_target_switch_iter=24000)
# validation as the official training logs report it: seg mIoU of the
# decoder (single scale) and "pseudo mIoU" of the validation images' pseudo
# labels (static maps, CAA with the decoder affinity, tau 0.75, original
# size; batch 1 as the official loop, since the affinity is centred by the
# batch mean)
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='WSSSIoUMetric', pred_key='pred_pseudo_sem_seg',
         prefix='pseudo', iou_metrics=['mIoU'])
]
test_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
# official ms + flip + CRF inference (docs/evaluation.md): squares of
# int(320 * s) for s in 1.0, 0.7, 1.2, 1.5 (summed in this order, scale 1.0
# first, as the official script does), each with its flip; per-scale mean of
# the view and the flipped-back flip, then the mean of the 4 scales; VOC
# computes the flip at scale 1.0 and discards it; softmax, dense CRF.
#   python tools/test.py THIS_CONFIG CHECKPOINT --tta
tta_model = dict(
    type='ExCELTTAModel',
    scales=[1.0, 0.7, 1.2, 1.5],
    base_size=320,
    drop_flip_scales=[1.0],
    crf={{_base_.crf}})

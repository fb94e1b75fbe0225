# ExCEL on COCO 2014 (paper settings): 81 classes, 224 attribute
# clusters, box threshold 0.88, LVC from 30k, affinity target never switched.
_base_ = [
    '../_base_/models/excel_clip-vit-b16.py',
    '../_base_/datasets/coco14_wsss-320x320.py',
    '../_base_/default_runtime.py', '../_base_/schedules/excel_100k.py'
]
model = dict(
    test_cfg=dict(
        mode='whole',
        lvc_norm_eps=1e-5,
        val_pseudo_labels=dict(box_threshold=0.75)),
    text_head=dict(
        class_names='coco_excel',
        bg_names='coco',
        tse=dict(
            descriptions='mmseg_excel/data/descriptions/coco.json',
            num_clusters=224)),
    cam_head=dict(num_fg=80),
    pseudo_labeler=dict(affinity=dict(box_threshold=0.88)),
    decode_head=dict(num_classes=81),
    lvc_start_iter=30000,
    aff_target_switch_iter=None)
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
# official COCO ms + flip + CRF inference (docs/evaluation.md): as VOC, but
# the flip is kept at every scale (1.0 included) and the logits are averaged
# at int(0.2 H) x int(0.2 W), then upsampled to H x W before softmax / CRF.
tta_model = dict(
    type='ExCELTTAModel',
    scales=[1.0, 0.7, 1.2, 1.5],
    base_size=320,
    storage_factor=0.2,
    crf={{_base_.crf}})

# Training-free ExCEL pseudo labels (docs/methods/excel.md §10): static CAMs
# (SVC + TSE +
# feature surgery), CAA with the last 6 layers at tau 0.79, PAR; used by
#   python tools/generate_pseudo_labels.py THIS_CONFIG --out-dir DIR [--crf]
# on VOC train (1 464 images; "seed" = no CRF, "mask" = with CRF).
_base_ = ['./excel_clip-vit-b16_1xb4-30k_voc12aug-320x320.py']
model = dict(test_cfg=dict(mode='whole', use_decoder=False))
pseudo_label_dataloader = dict(
    batch_size=4,
    num_workers=2,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.data_root}},
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
        ann_file='ImageSets/Segmentation/train.txt',
        pipeline={{_base_.test_pipeline}}))

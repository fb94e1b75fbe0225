# ExCEL on a custom folder dataset (docs/custom_dataset.md), shown on the Toy
# World presented as one (data/my_dataset). For your data: set the dataset
# base's data_root and classes, the background names, and the descriptions
# and attribute bank written by tools/build_attribute_bank.py; with the
# ViT-B/16 CLIP start from configs/excel/ (320x320) instead of the toy CLIP.
_base_ = [
    '../_base_/models/excel_toy-clip.py',
    '../_base_/datasets/my_dataset_folder-96x96.py',
    '../_base_/default_runtime.py', '../_base_/schedules/excel_toy_1k.py'
]
# the classes, background first (also set in the dataloaders below)
my_classes = ('background', 'apple', 'star', 'ring', 'cross', 'heart',
              'moon', 'kite', 'fish')
model = dict(
    text_head=dict(
        # the dataset's foreground classes, in its order
        class_names=list(my_classes[1:]),
        # words for the stuff around the objects (a list, or the 'voc' set)
        bg_names=['grass', 'sky', 'water', 'brick', 'sand'],
        # descriptions (written by hand, by an LLM, or the fallback of
        # build_attribute_bank.py --class-names) and the bank built from them
        tse=dict(
            descriptions='data/my_dataset/descriptions.json',
            bank_file='data/my_dataset/attribute_bank.pt',
            num_clusters=24)),
    cam_head=dict(num_fg=len(my_classes) - 1),
    decode_head=dict(num_classes=len(my_classes)))
train_dataloader = dict(
    num_workers=1, dataset=dict(metainfo=dict(classes=my_classes)))
val_dataloader = dict(
    num_workers=1, dataset=dict(metainfo=dict(classes=my_classes)))
test_dataloader = dict(
    num_workers=1, dataset=dict(metainfo=dict(classes=my_classes)))
pseudo_label_dataloader = dict(
    num_workers=1, dataset=dict(metainfo=dict(classes=my_classes)))

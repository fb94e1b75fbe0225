# Plain CAM baseline: plain CLIP tokens (no SVC), plain prompts (no TSE), raw
# patch-text maps with a background score and argmax (no CAA, no PAR, no
# LVC); the same decoder is trained on these pseudo labels.
_base_ = ['./excel_toy-clip_1xb8-1k_toy-world-96x96.py']
model = dict(
    backbone=dict(svc=None),
    text_head=dict(tse=None),
    pseudo_labeler=dict(use_affinity=False, use_par=False),
    lvc_start_iter=None,
    aff_target_switch_iter=None)

# Ablation: ExCEL without Static Visual Calibration (plain CLIP tokens; LVC
# needs the calibrated path, so it is off as well).
_base_ = ['./excel_toy-clip_1xb8-1k_toy-world-96x96.py']
model = dict(
    backbone=dict(svc=None), lvc_start_iter=None)

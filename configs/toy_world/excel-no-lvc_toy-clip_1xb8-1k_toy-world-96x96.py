# Ablation: ExCEL without Learnable Visual Calibration (static maps and the
# encoder attention for the whole schedule).
_base_ = ['./excel_toy-clip_1xb8-1k_toy-world-96x96.py']
model = dict(lvc_start_iter=None)

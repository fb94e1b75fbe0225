# Ablation: ExCEL without PAR (pixel-adaptive refinement of the CAA maps,
# docs/methods/excel.md §5.4); everything else as the full ExCEL.
_base_ = ['./excel_toy-clip_1xb8-1k_toy-world-96x96.py']
model = dict(pseudo_labeler=dict(use_par=False))

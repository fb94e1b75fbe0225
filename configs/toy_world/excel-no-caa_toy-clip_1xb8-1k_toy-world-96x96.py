# Ablation: ExCEL without CAA (the attention / decoder-affinity propagation
# of the patch-text maps, docs/methods/excel.md §5.1); PAR still refines the
# raw maps; everything else as the full ExCEL.
_base_ = ['./excel_toy-clip_1xb8-1k_toy-world-96x96.py']
model = dict(pseudo_labeler=dict(use_affinity=False))

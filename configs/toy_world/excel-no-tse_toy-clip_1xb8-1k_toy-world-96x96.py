# Ablation: ExCEL without Text Semantic Enrichment (plain prompt embeddings).
_base_ = ['./excel_toy-clip_1xb8-1k_toy-world-96x96.py']
model = dict(text_head=dict(tse=None))

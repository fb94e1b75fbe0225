# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Rank prompt templates by the CLIP-ES sharpness criterion
(docs/methods/clip_es.md §4.1).

For a template, over the images of a split (image-level labels only), with
``s_i1 … s_ik`` the softmax scores of image i's k ground-truth classes::

    sharpness = Σ_i var(s_i1, …, s_ik) / Σ_i mean(s_i1, …, s_ik)

Lower is better (the paper picked "a clean origami {}."). Choices the paper
leaves open (documented, as recommended by the spec): population variance
(ddof = 0); the softmax is the CLIP-ES score function of §3.1 — the image's
present classes followed by the background set, the image embedding being the
projected mean of the last block's patch tokens, scaled by CLIP's logit
scale; single-label images add variance 0 and their mean.

Example::

    python tools/analysis_tools/prompt_sharpness.py \
        configs/clip_es/clip-es_clip-vit-b16_training-free_voc12aug.py \
        --templates "a clean origami {}." "a photo of a {}." --max-images 500
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar
from torch import Tensor

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))


def sharpness(scores: Sequence[Tensor]) -> float:
    """Σ_i var(s_i) / Σ_i mean(s_i) over per-image GT-class scores (§4.1,
    population variance)."""
    if not scores:
        raise ValueError('sharpness needs at least one image with labels')
    var = sum(s.double().var(unbiased=False) if s.numel() > 1 else
              s.new_zeros((), dtype=torch.float64) for s in scores)
    mean = sum(s.double().mean() for s in scores)
    return float(var / mean)


@torch.no_grad()
def image_embedding(model, image: Tensor) -> Tensor:
    """Unit (E,) embedding: mean of the last block's patch tokens after
    ``ln_post``, projected (the CLIP-ES score function, §3.1)."""
    from mmseg_excel.models.pseudo_labels.gradcam import clip_block_forward
    visual = model.visual
    tokens, _ = model.gradcam.frozen_forward(visual, image[None])
    y, _ = clip_block_forward(visual.transformer.resblocks[-1], tokens,
                              need_weights=False)
    u = visual.ln_post(y)[:, 1:].mean(1) @ visual.proj.to(y.dtype)
    return (u / u.norm(dim=-1, keepdim=True))[0].float()


def gt_scores(emb: Tensor, keys: Tensor, fg: Tensor, bg: Tensor,
              logit_scale: float) -> Tensor:
    """Softmax over [present classes; background set]; the present part."""
    txt = torch.cat([fg[keys], bg])
    return (logit_scale * emb @ txt.t()).softmax(-1)[:keys.numel()]


def rank_templates(model, clip_model, tokenizer, templates: Sequence[str],
                   embeddings: List[Tensor],
                   keys: List[Tensor]) -> List[Dict]:
    """Sharpness of every template, ascending."""
    from mmseg_excel.models.text.clip_text import encode_class_texts
    out = []
    for t in templates:
        if '{}' not in t:
            raise ValueError(f'template {t!r} has no "{{}}" placeholder')
        txt = encode_class_texts(clip_model, tokenizer,
                                 model.class_names + model.bg_names, [t])
        fg, bg = txt[:model.num_fg], txt[model.num_fg:]
        scores = [
            gt_scores(e, k, fg, bg, model.logit_scale)
            for e, k in zip(embeddings, keys)
        ]
        out.append(
            dict(
                template=t,
                sharpness=sharpness(scores),
                mean_score=float(torch.cat(scores).mean())))
    return sorted(out, key=lambda r: r['sharpness'])


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a CLIP-ES config (model + data)')
    parser.add_argument('--templates', nargs='+', help='templates with {}')
    parser.add_argument('--templates-file', help='one template a line')
    parser.add_argument('--split', default='pseudo_label',
                        help='dataloader of the config (default pseudo_label)')
    parser.add_argument('--max-images', type=int, default=None)
    parser.add_argument('--device', default=None)
    parser.add_argument('--out', help='write the ranking as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    templates = list(args.templates or [])
    if args.templates_file:
        with open(args.templates_file) as f:
            templates += [ln.strip() for ln in f if ln.strip()]
    if not templates:
        raise ValueError('give --templates and/or --templates-file')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmseg_excel  # noqa: F401
    import mmseg_excel.models.segmentors.clip_es  # noqa: F401
    from mmseg.registry import MODELS
    from mmseg_excel.models.text.clip_text import (get_clip_tokenizer,
                                                   load_clip_model)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    mcfg = cfg.model.copy()
    mcfg['crf'] = None
    model = MODELS.build(mcfg).to(device).eval()
    src = dict(cfg.model.clip)
    clip_model = load_clip_model(
        src.get('model_name'), src.get('pretrained'),
        src.get('cache_dir')).to(device)
    tokenizer = get_clip_tokenizer(src.get('model_name'))
    key = f'{args.split}_dataloader'
    if key not in cfg:
        raise KeyError(f'config has no {key}')
    dl = cfg[key].copy()
    dl['sampler'] = dict(type='DefaultSampler', shuffle=False)
    dl['persistent_workers'] = False
    loader = Runner.build_dataloader(dl)
    n = len(loader.dataset)
    if args.max_images is not None:
        n = min(n, args.max_images)
    embeddings, keys = [], []
    bar = ProgressBar(n, file=sys.stdout)
    seen = 0
    for batch in loader:
        for ds in batch['data_samples']:
            if seen >= n:
                break
            seen += 1
            bar.update()
            k = model.present_classes(ds).to(device)
            if k.numel() == 0:
                continue  # no class: no score
            x = model._network_inputs(None, [ds])[0]
            embeddings.append(image_embedding(model, x))
            keys.append(k)
        if seen >= n:
            break
    sys.stdout.write('\n')
    ranking = rank_templates(model, clip_model, tokenizer, templates,
                             embeddings, keys)
    for r in ranking:
        print(f'{r["sharpness"]:.6f}  mean {r["mean_score"]:.4f}  '
              f'{r["template"]!r}')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(images=len(embeddings), ranking=ranking), f,
                      indent=1)
    return ranking


if __name__ == '__main__':
    main()

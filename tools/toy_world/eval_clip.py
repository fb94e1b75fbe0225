# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Zero-shot multi-label classification of the toy CLIP on a Toy World split.

Scores are cosine similarities between the image embedding and one text
embedding per foreground class (``--templates``, default ExCEL's
``"a clean origami {}."``). Reported (``--split``, default ``test``):

* mAP: mmpretrain ``AveragePrecision`` (macro), cross-checked against a
  plain torch implementation, of CLIP's zero-shot class probabilities
  (softmax over the classes of ``logit_scale * cos``) and of the raw cosines;
* precision / recall / F1 (mmpretrain ``MultiLabelMetric``, macro) at one
  global score threshold chosen on ``--thr-split`` (default ``val``) to
  maximise macro F1 there, and at top-1;
* present-vs-absent separation: per-image AUC between the scores of present
  and absent classes, and the share of images where every present class
  outscores every absent one.

``--linear-probe`` adds a diagnostic that separates the image tower from
the image–text alignment: a linear multi-label classifier (logistic
regression, L-BFGS) fitted on the frozen image embeddings of
``--probe-split`` (default ``train``) and scored on ``--split`` like the
zero-shot scores. A probe far above zero-shot means the tower knows the
classes and the text side or the alignment lags; both low, the tower.

Example::

    python tools/toy_world/eval_clip.py --data data/toy_world \
        --out mmseg_excel/data/toy_clip/zero_shot_test.json
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _bootstrap import import_toy_world  # noqa: E402

tw = import_toy_world()

DEFAULT_TEMPLATES = ('a clean origami {}.', )


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default='data/toy_world')
    p.add_argument('--split', default='test')
    p.add_argument('--thr-split', default='val')
    p.add_argument('--checkpoint', default=None)
    p.add_argument('--config', default=None)
    p.add_argument('--templates', nargs='+', default=list(DEFAULT_TEMPLATES))
    p.add_argument('--batch-size', type=int, default=256)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--linear-probe', action='store_true',
                   help='also fit a linear probe on frozen image embeddings')
    p.add_argument('--probe-split', default='train')
    p.add_argument('--out', default=None, help='write the metrics as JSON')
    return p.parse_args(argv)


@torch.no_grad()
def class_text_features(model, tokenizer, class_names: Sequence[str],
                        templates: Sequence[str]) -> torch.Tensor:
    """(K, D) unit class embeddings: mean of unit template embeddings."""
    feats = []
    for name in class_names:
        tok = tokenizer([t.format(name) for t in templates])
        e = model.encode_text(tok, normalize=True).mean(0)
        feats.append(e / e.norm())
    return torch.stack(feats)


@torch.no_grad()
def image_features(model, images: np.ndarray,
                   batch_size: int = 256) -> torch.Tensor:
    """(N, D) unit image embeddings of uint8 RGB images (N, H, W, 3)."""
    import open_clip
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)
    out = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).permute(0, 3, 1, 2)
        x = (x.float() / 255. - mean) / std
        out.append(model.encode_image(x, normalize=True))
    return torch.cat(out)


def average_precision(scores: torch.Tensor,
                      targets: torch.Tensor) -> torch.Tensor:
    """Per-class AP (K,) in %: mean precision at each positive's rank."""
    aps = []
    for k in range(scores.shape[1]):
        order = torch.argsort(scores[:, k], descending=True, stable=True)
        t = targets[order, k].float()
        if t.sum() == 0:
            aps.append(torch.tensor(float('nan')))
            continue
        prec = t.cumsum(0) / torch.arange(1, len(t) + 1)
        aps.append((prec * t).sum() / t.sum() * 100)
    return torch.stack(aps)


def separation(scores: torch.Tensor, targets: torch.Tensor) -> Dict[str, float]:
    """Present-vs-absent separation within each image.

    ``auc``: share of (present, absent) class pairs of the same image where
    the present class scores higher (0.5 = chance); ``all_above``: share of
    images whose lowest present score beats the highest absent score;
    ``margin``: mean over images of mean(present) - mean(absent). Images
    without a present or without an absent class are skipped.
    """
    t = targets.bool()
    valid = t.any(1) & (~t).any(1)  # images with a present and an absent
    t, scores = t[valid], scores[valid]
    diff = scores[:, :, None] - scores[:, None, :]  # (N, K, K): present - absent
    pair = t[:, :, None] & ~t[:, None, :]
    wins = ((diff > 0).float() + 0.5 * (diff == 0).float()) * pair
    auc = (wins.sum() / pair.sum()).item()
    inf = torch.tensor(float('inf'))
    low = torch.where(t, scores, inf).amin(1)
    high = torch.where(~t, scores, -inf).amax(1)
    mp = (scores * t).sum(1) / t.sum(1)
    ma = (scores * ~t).sum(1) / (~t).sum(1)
    return dict(
        auc=auc,
        all_above=(low > high).float().mean().item(),
        margin=(mp - ma).mean().item())


def macro_f1(pred: torch.Tensor, targets: torch.Tensor) -> float:
    """Macro F1 (%) of binary predictions (N, K)."""
    tp = (pred & targets).sum(0).float()
    fp = (pred & ~targets).sum(0).float()
    fn = (~pred & targets).sum(0).float()
    f1 = 2 * tp / (2 * tp + fp + fn).clamp(min=1)
    return (f1.mean() * 100).item()


def best_threshold(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Global threshold maximising macro F1 (candidates: score quantiles)."""
    cands = torch.quantile(scores.flatten(), torch.linspace(0.01, 0.99, 197))
    f1 = [macro_f1(scores > c, targets.bool()) for c in cands]
    return cands[int(np.argmax(f1))].item()


def load_split(root: str, split: str,
               num_classes: int) -> Tuple[np.ndarray, torch.Tensor, List[str]]:
    """Images (N, H, W, 3) uint8 and multi-hot targets (N, K) of a split."""
    list_file = osp.join(root, 'ImageSets', 'Segmentation', split + '.txt')
    if not osp.isfile(list_file):
        raise FileNotFoundError(f'split list not found: {list_file}')
    with open(list_file) as f:
        ids = [line.strip() for line in f if line.strip()]
    with open(osp.join(root, 'cls_labels.json')) as f:
        labels = json.load(f)
    images = np.stack([
        np.asarray(Image.open(osp.join(root, 'JPEGImages', i + '.png')))
        for i in ids
    ])
    targets = torch.zeros(len(ids), num_classes, dtype=torch.long)
    for n, i in enumerate(ids):
        targets[n, [c - 1 for c in labels[i]]] = 1
    return images, targets, ids


def mmpretrain_metrics(scores: torch.Tensor, targets: torch.Tensor,
                       thr: float) -> Dict[str, float]:
    """mAP and macro P/R/F1 with mmpretrain (needs mmcv)."""
    from mmpretrain.evaluation import AveragePrecision, MultiLabelMetric
    res = dict(mAP=AveragePrecision.calculate(scores, targets).item())
    binary = (scores > thr).float()
    p, r, f1, _ = MultiLabelMetric.calculate(binary, targets, thr=0.5)
    res.update(precision=p.item(), recall=r.item(), f1=f1.item())
    p, r, f1, _ = MultiLabelMetric.calculate(scores, targets, topk=1)
    res.update(precision_top1=p.item(), recall_top1=r.item(),
               f1_top1=f1.item())
    return res


def _scored_metrics(scores: torch.Tensor, targets: torch.Tensor,
                    thr_scores: torch.Tensor,
                    thr_targets: torch.Tensor) -> dict:
    """mAP, F1 at a threshold tuned on the threshold split, mmpretrain."""
    thr = best_threshold(thr_scores, thr_targets)
    ap = average_precision(scores, targets)
    out = dict(
        threshold=thr,
        mAP_torch=ap.nanmean().item(),
        AP_per_class={n: a.item()
                      for n, a in zip(tw.CLASS_NAMES, ap)},
        f1_torch=macro_f1(scores > thr, targets.bool()))
    try:
        out['mmpretrain'] = mmpretrain_metrics(scores, targets, thr)
    except ImportError as e:  # mmpretrain needs mmcv
        out['mmpretrain'] = f'unavailable: {e}'
    return out


def evaluate(model, tokenizer, root: str, split: str, thr_split: str,
             templates: Sequence[str], batch_size: int = 256) -> dict:
    """All metrics of ``split``; F1 thresholds come from ``thr_split``.

    ``softmax``: CLIP's zero-shot probabilities over the K classes,
    ``softmax(logit_scale * cos)``; ``raw``: the cosine similarities.
    """
    names = list(tw.CLASS_NAMES)
    text = class_text_features(model, tokenizer, names, templates)
    scale = model.logit_scale.exp().item()
    imgs, t_thr, _ = load_split(root, thr_split, len(names))
    cos_thr = image_features(model, imgs, batch_size) @ text.T
    imgs, targets, ids = load_split(root, split, len(names))
    cos = image_features(model, imgs, batch_size) @ text.T
    return dict(
        split=split,
        thr_split=thr_split,
        num_images=len(ids),
        templates=list(templates),
        classes=names,
        logit_scale=scale,
        softmax=_scored_metrics((scale * cos).softmax(1), targets,
                                (scale * cos_thr).softmax(1), t_thr),
        raw=_scored_metrics(cos, targets, cos_thr, t_thr),
        separation=separation(cos, targets))


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor,
                 test_x: torch.Tensor, test_y: torch.Tensor,
                 weight_decay: float = 1e-4, max_iter: int = 300) -> dict:
    """Logistic-regression probe (one sigmoid per class, L-BFGS, L2 on the
    weights) on fixed features; test mAP and present-vs-absent AUC."""
    x, y = train_x.float(), train_y.float()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mean) / std
    w = torch.zeros(x.shape[1], y.shape[1], requires_grad=True)
    b = torch.zeros(y.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=max_iter,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            x @ w + b, y) + weight_decay * (w**2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    scores = ((test_x.float() - mean) / std) @ w.detach() + b.detach()
    return dict(mAP=average_precision(scores, test_y).nanmean().item(),
                AUC=separation(scores, test_y)['auc'])


def main(argv=None) -> None:
    """Entry point."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tokenizer, _ = tw.load_toy_clip(args.checkpoint, args.config)
    res = evaluate(model, tokenizer, args.data, args.split, args.thr_split,
                   args.templates, args.batch_size)
    if args.linear_probe:
        k = len(tw.CLASS_NAMES)
        px, py, _ = load_split(args.data, args.probe_split, k)
        tx, ty, _ = load_split(args.data, args.split, k)
        res['linear_probe'] = dict(
            fit_split=args.probe_split,
            **linear_probe(image_features(model, px, args.batch_size), py,
                           image_features(model, tx, args.batch_size), ty))
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')


if __name__ == '__main__':
    main()

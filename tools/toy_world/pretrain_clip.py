# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Contrastively pretrain the tiny Toy-World CLIP on generated captioned images.

Every step draws a fresh batch of scenes (``scene_rng(seed, 'pretrain',
step * batch + i)``), so a run is fully determined by ``--seed`` and the
step count, and a resumed run sees the same batches. The model is an
open_clip custom architecture (``--model-config``, registered with
``open_clip.add_model_config``); the loss is CLIP's symmetric InfoNCE.

Example (the shipped checkpoint; see mmseg_excel/data/toy_clip/README.md)::

    python tools/toy_world/pretrain_clip.py --seed 0 --steps 5000 --batch-size 64 --lr 1e-3 \
        --warmup 100 --name-only-prob 0.8 --work-dir work_dirs/toy_clip_run \
        --export mmseg_excel/data/toy_clip
"""
import argparse
import json
import math
import os
import os.path as osp
import shutil
import sys
import time
from typing import Tuple

import numpy as np
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _bootstrap import REPO_ROOT, import_toy_world  # noqa: E402

tw = import_toy_world()

DEFAULT_CONFIG = REPO_ROOT / 'mmseg_excel' / 'data' / 'toy_clip' / 'toy_clip.json'


def parse_args() -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model-config', default=str(DEFAULT_CONFIG),
                   help='open_clip model JSON; the model name is its stem')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--steps', type=int, default=5000)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--warmup', type=int, default=100)
    p.add_argument('--weight-decay', type=float, default=0.1)
    p.add_argument('--name-only-prob', type=float, default=0.8,
                   help='share of captions that name the classes only (no '
                   'colour, texture, size or background words)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--workers', type=int, default=1,
                   help='data-loader processes drawing the scenes')
    p.add_argument('--work-dir', default='/tmp/toy_clip_run')
    p.add_argument('--ckpt-every', type=int, default=25)
    p.add_argument('--log-every', type=int, default=10)
    p.add_argument('--export', default=None,
                   help='folder to write <name>.pt (fp16), its .sha256 and '
                   'the model JSON after the last step')
    p.add_argument('--no-resume', action='store_true')
    return p.parse_args()


def register_model(config_path: str) -> Tuple[str, dict]:
    """Register the JSON with open_clip (its ``conv_stem`` entry included);
    return (model name, config)."""
    from mmseg_excel.utils.clip_weights import register_model_config
    if not osp.isfile(config_path):
        raise FileNotFoundError(f'model config not found: {config_path}')
    name = register_model_config(config_path)
    with open(config_path) as f:
        return name, json.load(f)


class CaptionedScenes(torch.utils.data.Dataset):
    """Item ``step`` = a fresh batch: normalised images and caption tokens."""

    def __init__(self, seed: int, batch_size: int, image_size: int,
                 tokenizer, stream: str = 'pretrain',
                 name_only_prob: float = 0.0) -> None:
        import open_clip
        self.seed, self.batch_size = seed, batch_size
        self.name_only_prob = name_only_prob
        self.image_size, self.tokenizer, self.stream = (image_size, tokenizer,
                                                        stream)
        self.mean = np.asarray(open_clip.OPENAI_DATASET_MEAN, np.float32)
        self.std = np.asarray(open_clip.OPENAI_DATASET_STD, np.float32)

    def __len__(self) -> int:
        return 2**31 - 1

    def __getitem__(self, step: int) -> Tuple[torch.Tensor, torch.Tensor]:
        images, captions = [], []
        for i in range(self.batch_size):
            rng = tw.scene_rng(self.seed, self.stream,
                               step * self.batch_size + i)
            scene = tw.render_scene(rng, self.image_size)
            images.append(scene.image)
            captions.append(tw.make_caption(rng, scene, self.name_only_prob))
        x = (np.stack(images).astype(np.float32) / 255. - self.mean) / self.std
        x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        return x, self.tokenizer(captions)


def lr_at(step: int, args: argparse.Namespace) -> float:
    """Linear warm-up then cosine decay to 0."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    t = (step - args.warmup) / max(1, args.steps - args.warmup)
    return 0.5 * args.lr * (1 + math.cos(math.pi * t))


def atomic_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file, then rename."""
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export(model: torch.nn.Module, name: str, config_path: str,
           out_dir: str) -> str:
    """Write the fp16 open_clip state dict, its checksum and the config."""
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, f'{name}.pt')
    sd = {k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu()
          for k, v in model.state_dict().items()}
    atomic_save(sd, path)
    with open(path + '.sha256', 'w') as f:
        f.write(f'{tw.file_sha256(path)}  {name}.pt\n')
    dst = osp.join(out_dir, osp.basename(config_path))
    if osp.abspath(dst) != osp.abspath(config_path):
        shutil.copyfile(config_path, dst)
    return path


def main() -> None:
    """Train, checkpoint every ``--ckpt-every`` steps, export at the end."""
    import open_clip
    from mmseg_excel.utils.clip_weights import create_clip_model
    args = parse_args()
    torch.set_num_threads(args.threads)
    name, cfg = register_model(args.model_config)
    torch.manual_seed(args.seed)
    model = create_clip_model(name, pretrained=None)
    tokenizer = open_clip.get_tokenizer(name)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        skip = p.ndim < 2 or 'ln' in n or 'bias' in n or 'logit_scale' in n
        (no_decay if skip else decay).append(p)
    opt = torch.optim.AdamW([
        dict(params=decay, weight_decay=args.weight_decay),
        dict(params=no_decay, weight_decay=0.)
    ], lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    os.makedirs(args.work_dir, exist_ok=True)
    ckpt_path = osp.join(args.work_dir, 'last.pth')
    start, elapsed_before = 0, 0.0
    if not args.no_resume and osp.isfile(ckpt_path):
        ck = torch.load(ckpt_path, map_location='cpu', weights_only=False)
        model.load_state_dict(ck['model'])
        opt.load_state_dict(ck['optimizer'])
        start, elapsed_before = ck['step'], ck.get('elapsed', 0.0)
        print(f'resumed from {ckpt_path} at step {start}', flush=True)
    data = CaptionedScenes(args.seed, args.batch_size,
                           cfg['vision_cfg']['image_size'], tokenizer,
                           name_only_prob=args.name_only_prob)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=None,
        sampler=range(start, args.steps),
        num_workers=args.workers,
        prefetch_factor=2 if args.workers > 0 else None)
    loss_fn = open_clip.ClipLoss()
    model.train()
    t0 = time.time()
    n_params = sum(p.numel() for p in model.parameters())
    print(f'model {name}: {n_params / 1e6:.2f} M parameters; '
          f'steps {start}..{args.steps}, batch {args.batch_size}', flush=True)
    step = start
    for step, (images, tokens) in enumerate(loader, start):
        for g in opt.param_groups:
            g['lr'] = lr_at(step, args)
        img_f, txt_f, scale = model(images, tokens)[:3]
        loss = loss_fn(img_f, txt_f, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        done = step + 1
        elapsed = elapsed_before + time.time() - t0
        if done % args.log_every == 0 or done == args.steps:
            print(f'step {done}/{args.steps} loss {loss.item():.4f} '
                  f'lr {lr_at(step, args):.2e} scale '
                  f'{model.logit_scale.exp().item():.1f} '
                  f'elapsed {elapsed:.0f}s '
                  f'({elapsed / max(1, done - start if start else done):.2f}'
                  ' s/step)', flush=True)
        if done % args.ckpt_every == 0 or done == args.steps:
            atomic_save(
                dict(model=model.state_dict(), optimizer=opt.state_dict(),
                     step=done, elapsed=elapsed, args=vars(args)), ckpt_path)
    if args.export:
        path = export(model, name, args.model_config, args.export)
        print(f'exported {path} ({osp.getsize(path) / 1e6:.2f} MB)',
              flush=True)


if __name__ == '__main__':
    main()

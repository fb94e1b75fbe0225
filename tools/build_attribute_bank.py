# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Build the TSE attribute bank offline (docs/methods/excel.md §2.3).

Example (the authors' VOC setting)::

    python tools/build_attribute_bank.py \\
        --descriptions mmseg_excel/data/descriptions/voc.json \\
        --clip-model ViT-B-16 --pretrained openai \\
        --num-clusters 112 --seed 0 --out work_dirs/voc_bank_112.pt

A dataset without written descriptions (docs/custom_dataset.md) can start
from its class names and generic templates only: ``--class-names cat dog
--write-descriptions descriptions.json`` writes the fallback descriptions
(``--templates``, default the ``descriptions`` set) and builds the bank from
them.

Point ``tse.bank_file`` of an ``ExCELTextHead`` config at the output. The
file records the CLIP text-tower fingerprint, the class order, the sha256 of
the descriptions and the clustering settings; a model with another CLIP,
other classes or other descriptions refuses it.
"""
import argparse
import os.path as osp
import sys
import time

import torch

from mmseg_excel.models.text import (build_attribute_bank,
                                     descriptions_from_templates,
                                     get_clip_tokenizer, load_clip_model,
                                     resolve_templates, save_attribute_bank,
                                     write_descriptions)


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        '--descriptions',
        help='JSON: class name -> list of description sentences')
    src.add_argument(
        '--class-names',
        nargs='+',
        help='fallback without descriptions: foreground class names (in '
        'the dataset order), described by --templates')
    p.add_argument(
        '--templates',
        nargs='+',
        default=['descriptions'],
        help='with --class-names: template set name or templates with {} '
        '(default: the generic "descriptions" set)')
    p.add_argument(
        '--write-descriptions',
        help='with --class-names: where the fallback descriptions JSON is '
        'written (the config\'s tse.descriptions); default: next to --out')
    p.add_argument(
        '--clip-model',
        default=None,
        help='open_clip architecture name (e.g. ViT-B-16); omit '
        'for an OpenAI-layout state-dict file')
    p.add_argument(
        '--pretrained',
        required=True,
        help='open_clip tag (openai) or weight file')
    p.add_argument('--cache-dir', default=None, help='CLIP download cache')
    p.add_argument(
        '--num-clusters',
        type=int,
        required=True,
        help='M (112 VOC, 224 COCO)')
    p.add_argument('--seed', type=int, default=0, help='KMeans random_state')
    p.add_argument(
        '--n-init',
        type=int,
        default=10,
        help='KMeans n_init (10 = the authors\' scikit-learn 1.0)')
    p.add_argument('--device', default='cpu', help='device for CLIP')
    p.add_argument('--out', required=True, help='bank file to write')
    return p.parse_args(argv)


def coverage_report(bank) -> str:
    """Clusters per class, and how many clusters are class-pure."""
    flags = bank.flags > 0
    per_class = flags.sum(1)
    pure = flags.sum(0) == 1
    owned = (flags & pure[None]).sum(1)  # clusters a class owns alone
    lines = [f'{"class":<24} clusters  exclusive']
    for name, n, o in zip(bank.class_order, per_class.tolist(),
                          owned.tolist()):
        lines.append(f'{name:<24} {n:>8}  {o:>9}')
    lines.append(
        f'clusters per class: min {int(per_class.min())}, max '
        f'{int(per_class.max())}, mean {per_class.float().mean():.2f}; '
        f'class-pure clusters {int(pure.sum())}/{bank.num_clusters}; '
        f'classes owning no exclusive cluster: {int((owned == 0).sum())}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    """Entry point."""
    args = parse_args(argv)
    t0 = time.time()
    if args.class_names:
        templates = resolve_templates(
            args.templates[0] if len(args.templates) == 1 else args.templates)
        desc = descriptions_from_templates(args.class_names, templates)
        args.descriptions = args.write_descriptions or (
            osp.splitext(args.out)[0] + '_descriptions.json')
        write_descriptions(args.descriptions, desc)
        print(f'fallback descriptions ({len(templates)} templates x '
              f'{len(desc)} classes) written to {args.descriptions}')
    elif args.write_descriptions:
        raise SystemExit('--write-descriptions needs --class-names')
    print(f'loading CLIP {args.clip_model} ({args.pretrained})', flush=True)
    model = load_clip_model(args.clip_model, args.pretrained, args.cache_dir)
    model = model.to(torch.device(args.device))
    tokenizer = get_clip_tokenizer(args.clip_model)
    bank = build_attribute_bank(
        model,
        tokenizer,
        args.descriptions,
        args.num_clusters,
        seed=args.seed,
        n_init=args.n_init,
        model_name=args.clip_model,
        pretrained=args.pretrained,
        verbose=True)
    save_attribute_bank(bank, args.out)
    print(coverage_report(bank))
    print(f'centers {tuple(bank.centers.shape)}, flags '
          f'{tuple(bank.flags.shape)} written to {args.out} '
          f'({time.time() - t0:.1f}s)')
    return 0


if __name__ == '__main__':
    sys.exit(main())

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Measure everything at once on a device and print one summary table
(run by ``tools/analysis_tools/gpu_check.sh`` after it installed the
bundle; see its header).

Rows: the whole-ExCEL-segmentor parity test on the device (when the
fixtures are in the bundle or ``EXCEL_PARITY_DIR``), ``benchmark_train.py``
(ExCEL VOC config, random ViT-B/16, batch 4, 320², fp32 and ``--amp``),
``benchmark_pseudo_labels.py`` (ExCEL with CRF, CLIP-ES), the toy ExCEL
training (``tools/train.py``, the README's quick-start config). Each row:
status, s/iter or images/s, peak memory. ``--quick`` shrinks every size
(the CPU fallback CI runs: ``--device cpu --quick``).

Example::

    python tools/analysis_tools/gpu_check.py --device cuda
    python tools/analysis_tools/gpu_check.py --device cpu --quick --out /tmp/gpu_check
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
EXCEL_TRAIN = 'configs/excel/excel_clip-vit-b16_1xb4-30k_voc12aug-320x320.py'
EXCEL_FREE = ('configs/excel/'
              'excel_clip-vit-b16_training-free_voc12aug-320x320.py')
CLIP_ES = 'configs/clip_es/clip-es_clip-vit-b16_training-free_voc12aug.py'
TOY = 'configs/toy_world/excel_toy-clip_1xb8-1k_toy-world-96x96.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cuda')
    p.add_argument('--quick', action='store_true',
                   help='tiny sizes (the CPU fallback of CI)')
    p.add_argument('--bundle', default=osp.join(ROOT, 'gpu_bundle'))
    p.add_argument('--out', default=osp.join(ROOT, 'work_dirs', 'gpu_check'))
    return p.parse_args(argv)


def run(cmd: List[str], env: Optional[dict] = None, log: str = '') -> tuple:
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONUNBUFFERED='1',
                                   **(env or {})))
    out = proc.stdout + proc.stderr
    if log:
        with open(log, 'w') as f:
            f.write(out)
    return proc.returncode, out, time.time() - t0


def _num(pattern: str, text: str) -> Optional[float]:
    m = re.search(pattern, text, re.M)
    return float(m.group(1)) if m else None


def main(argv: Optional[List[str]] = None) -> List[Dict]:
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    py = sys.executable
    rows: List[Dict] = []

    def add(name, rc, value, unit, mem, seconds, log):
        rows.append(dict(check=name, status='pass' if rc == 0 else 'FAIL',
                         value=value, unit=unit, mem=mem, seconds=seconds,
                         log=log))
        print(f'[gpu_check] {name}: {rows[-1]["status"]} ({seconds:.0f} s; '
              f'log {log})', flush=True)

    # 1. parity of the ExCEL encoder, head, refinement and whole segmentor,
    #    on the device
    # EXCEL_PARITY_DIR, else the bundle's copy, else ../shared/parity (the
    # default of tools/run_tests.sh)
    parity = os.environ.get('EXCEL_PARITY_DIR') or next(
        (d for d in (osp.join(args.bundle, 'parity'),
                     osp.join(osp.dirname(ROOT), 'shared', 'parity'))
         if osp.isfile(osp.join(d, 'inputs.pt'))), osp.join(args.bundle,
                                                            'parity'))
    log = osp.join(args.out, 'parity.log')
    if osp.isfile(osp.join(parity, 'inputs.pt')):
        rc, out, sec = run([py, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                            'tests/test_parity/test_parity_encoder.py',
                            'tests/test_parity/test_parity_head.py',
                            'tests/test_parity/test_parity_refine.py',
                            'tests/test_parity/test_parity_segmentor.py'],
                           dict(EXCEL_PARITY_DIR=parity,
                                MMSEG_EXCEL_TEST_DEVICE=args.device), log)
        passed = _num(r'(\d+) passed', out)
        add('parity: ExCEL segmentor', rc, passed, 'tests passed', None, sec,
            log)
    else:
        rows.append(dict(check='parity: ExCEL segmentor',
                         status='skipped (fixtures not in the bundle)',
                         value=None, unit='', mem=None, seconds=0, log=''))
    size = ['--size', '64', '64'] if args.quick else ['--size', '320', '320']
    its = ['--iters', '1', '--warmup', '0'] if args.quick else [
        '--iters', '5', '--warmup', '2']
    common = ['--random-weights', '--device', args.device, *its]
    # 2. training step, fp32 and bf16/fp16 autocast
    for amp in ([], ['--amp']):
        name = 'benchmark_train' + (' --amp' if amp else '')
        log = osp.join(args.out, name.replace(' --', '_') + '.log')
        rc, out, sec = run([py, 'tools/analysis_tools/benchmark_train.py',
                            EXCEL_TRAIN, *common, *size, '--batch-size', '4',
                            '--no-tse', *amp], log=log)
        step = re.search(r'^step \(total\)\s+([0-9.]+)s\s+([0-9.]+)s', out,
                         re.M)
        value = (f'{float(step.group(1)):.3f} / {float(step.group(2)):.3f}'
                 if step else None)
        add(name, rc, value, 's/iter before / after LVC',
            _num(r'peak memory \(after LVC\): (\d+) MiB', out), sec, log)
    # 3. training-free pseudo labels
    for name, cfg, extra in (('pseudo labels ExCEL (+CRF)', EXCEL_FREE,
                              ['--crf', '--no-tse']),
                             ('pseudo labels CLIP-ES', CLIP_ES, [])):
        log = osp.join(args.out, name.split()[-2 if 'CRF' in name else -1]
                       .lower() + '_pl.log')
        rc, out, sec = run([py, 'tools/analysis_tools/benchmark_pseudo_labels'
                            '.py', cfg, *common, *size, '--batch-size', '4',
                            *extra], log=log)
        add(name, rc, _num(r'^total\s+[0-9.]+\s+([0-9.]+)', out), 'images/s',
            _num(r'peak memory: (\d+) MiB', out), sec, log)
    # 4. the toy ExCEL training of the quick start
    log = osp.join(args.out, 'toy_train.log')
    world = osp.join(args.out, 'toy_world')
    if not osp.isfile(osp.join(world, 'meta.json')):
        n = ['--num-train', '8', '--num-val', '2', '--num-test', '2'] \
            if args.quick else []
        run([py, 'tools/toy_world/make_dataset.py', '--out', world,
             '--seed', '0', *n])
    opts = [f'{s}_dataloader.dataset.data_root={world}'
            for s in ('train', 'val', 'test')]
    if args.quick:
        opts += ['train_dataloader.batch_size=2', 'train_cfg.max_iters=4',
                 'train_cfg.val_interval=4', 'param_scheduler.0.max_iters=4',
                 'param_scheduler.0.warmup_iters=1', 'model.lvc_start_iter=2',
                 'model.aff_target_switch_iter=3',
                 'default_hooks.checkpoint.interval=4',
                 'custom_hooks.0.vis_interval=0']
        opts += [f'{s}_dataloader.{k}={v}' for s in ('train', 'val', 'test')
                 for k, v in (('num_workers', 0),
                              ('persistent_workers', False))]
    rc, out, sec = run([py, 'tools/train.py', TOY, '--work-dir',
                        osp.join(args.out, 'toy_work'), '--cfg-options',
                        *opts], log=log)
    its = re.findall(r'Iter\(train\) \[\s*(\d+)/', out)
    miou = _num(r'mIoU: ([0-9.]+)', out)
    add('toy ExCEL training', rc,
        None if not its else f'{sec / max(1, int(its[-1])):.3f}',
        f's/iter incl. start-up (val mIoU {miou})', None, sec, log)

    print(f'\ngpu_check summary, device {args.device}'
          f'{" (quick sizes)" if args.quick else ""}')
    print(f'{"check":<30}{"status":<10}{"value":>22}  {"peak MiB":>9}  unit')
    for r in rows:
        v = '-' if r['value'] is None else str(r['value'])
        m = '-' if r['mem'] is None else f'{r["mem"]:.0f}'
        print(f'{r["check"]:<30}{r["status"]:<10}{v:>22}  {m:>9}  '
              f'{r["unit"]}')
    return rows


if __name__ == '__main__':
    rows = main()
    sys.exit(0 if all(r['status'] != 'FAIL' for r in rows) else 1)

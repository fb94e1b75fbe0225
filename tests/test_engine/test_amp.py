# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Mixed precision (``tools/train.py --amp``) with the ExCEL segmentor.

mmengine's ``AmpOptimWrapper`` refuses machines without an accelerator;
``AnyDeviceAmpOptimWrapper`` (what ``--amp`` selects there) autocasts to
bf16 on the CPU. One training step of the real VOC ExCEL config on the tiny
CLIP, before and after the LVC switch: finite losses, the frozen CLIP runs
under no-grad (in bf16) and none of its parameters requires or receives a
gradient, while the decoder is updated.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TINY_JSON = str(ROOT / 'tests' / 'data' / 'tiny_clip.json')
EXCEL_TRAIN = str(ROOT / 'configs' / 'excel' /
                  'excel_clip-vit-b16_1xb4-30k_voc12aug-320x320.py')


def _tiny_options(weights: str) -> dict:
    """The VOC ExCEL config on the 3-block tiny CLIP (no TSE bank)."""
    return {
        'model.backbone.model_name': TINY_JSON,
        'model.backbone.pretrained': weights,
        'model.text_head.clip.model_name': TINY_JSON,
        'model.text_head.clip.pretrained': weights,
        'model.text_head.tse': None,
        'model.backbone.svc.num_blocks': 2,
        'model.pseudo_labeler.affinity.num_layers': 2,
        'model.decode_head.in_channels': 64,
        'model.decode_head.channels': 16,
        'model.decode_head.num_heads': 2,
        'model.decode_head.num_layers': 3,
        'model.decode_head.num_decoder_layers': 1,
    }


def _tiny_excel(weights: str):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401
    from mmseg.registry import MODELS
    cfg = Config.fromfile(EXCEL_TRAIN)
    cfg.merge_from_dict(_tiny_options(weights))
    return MODELS.build(cfg.model), cfg


def _batch(num_fg: int, b: int = 2, size=(64, 64)) -> dict:
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i in range(b):
        inputs.append(torch.randint(0, 256, (3, *size), generator=g,
                                    dtype=torch.uint8))
        s = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size))
        s.gt_sem_seg = PixelData(data=torch.zeros(1, *size, dtype=torch.long))
        lab = torch.zeros(num_fg)
        lab[[i, i + 3]] = 1
        s.gt_cls_label = lab
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_mmengine_amp_wrapper_needs_accelerator():
    """Why the plugin wrapper exists (skip where a GPU is present)."""
    from mmseg_excel.engine.optimizers.amp_optim_wrapper import \
        accelerator_available
    if accelerator_available():
        pytest.skip('an accelerator is present')
    from mmengine.optim import AmpOptimWrapper
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(AssertionError):
        AmpOptimWrapper(optimizer=opt, dtype='bfloat16')


def test_amp_bf16_train_step_cpu(tiny_clip_files):
    from mmengine.optim import build_optim_wrapper
    torch.manual_seed(0)
    model, cfg = _tiny_excel(tiny_clip_files['open_clip'])
    model.train()
    wrapper = build_optim_wrapper(
        model,
        dict(type='AnyDeviceAmpOptimWrapper', dtype='bfloat16',
             optimizer=dict(type='AdamW', lr=1e-3)))
    assert wrapper.cast_dtype == torch.bfloat16
    seen, dec_seen, pl_seen = [], [], []

    def in_block(module, args, out):  # runs inside the backbone's forward
        seen.append((torch.is_grad_enabled(),
                     torch.is_autocast_enabled('cpu'), out.dtype))

    for block in model.backbone.resblocks:
        block.mlp.register_forward_hook(in_block)
    feats = []
    model.backbone.register_forward_hook(
        lambda m, a, out: feats.append(out.image_features))
    model.decode_head.register_forward_hook(
        lambda m, a, out: dec_seen.append(out['seg'].dtype))
    model.pseudo_labeler.register_forward_hook(
        lambda m, a, kw, out: pl_seen.append(
            (torch.is_autocast_enabled('cpu'), kw['cams'].dtype,
             out['refined_cams'].dtype)),
        with_kwargs=True)
    dec_before = [p.detach().clone() for p in model.decode_head.parameters()]
    data = _batch(model.text_head.num_fg)
    for it in (0, model.lvc_start_iter):
        model.set_train_iter(it)
        log_vars = model.train_step(data, wrapper)
        assert torch.isfinite(torch.as_tensor(log_vars['loss'])), log_vars
        assert log_vars['pl_lvc'] == float(it > 0)
    # the frozen CLIP ran without grad and in float32, autocast off (all
    # CLIP computation is fp32 in the method); the refinement too
    assert seen and all(not grad and not amp and dtype == torch.float32
                        for grad, amp, dtype in seen), seen
    assert all(not f.requires_grad for f in feats)
    assert all(f.dtype == torch.float32 for f in feats)
    assert pl_seen and all(not amp and c == torch.float32 and
                           o == torch.float32 for amp, c, o in pl_seen)
    # only the trainable decoder runs under bf16 autocast
    assert dec_seen and all(d == torch.bfloat16 for d in dec_seen), dec_seen
    for name, p in model.backbone.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    for p in model.text_head.parameters():
        assert not p.requires_grad and p.grad is None
    # the decoder was trained (update_params zeroes the grads afterwards)
    changed = [not torch.equal(a, p)
               for a, p in zip(dec_before, model.decode_head.parameters())]
    assert any(changed)


@pytest.mark.slow
def test_train_tool_amp_cpu(tmp_path, tiny_clip_files):
    """``tools/train.py --amp`` trains the VOC ExCEL config on the CPU."""
    from mmseg_excel.testing.tiny_datasets import make_tiny_voc
    data = make_tiny_voc(str(tmp_path / 'voc'), num_train=4, num_val=1,
                         size=(64, 80))
    opts = [f'{k}={v}' for k, v in _tiny_options(
        tiny_clip_files['open_clip']).items()]
    opts += [f'{split}_dataloader.dataset.data_root={data["root"]}'
             for split in ('train', 'val', 'test')]
    opts += [
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=100', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2', 'model.lvc_start_iter=1'
    ]
    env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1',
               CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'train.py'), EXCEL_TRAIN,
         '--work-dir', str(tmp_path / 'work'), '--amp', '--cfg-options',
         *opts], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'AnyDeviceAmpOptimWrapper' in out, out[-3000:]
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()

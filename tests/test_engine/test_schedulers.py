# Copyright (c) mmseg-excel contributors. All rights reserved.
"""PolyWarmupLR reproduces the official PolyWarmupAdamW rule, and the
shipped schedule config reproduces the official learning rates."""
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import PARAM_SCHEDULERS
from mmengine.optim.scheduler import LinearLR, PolyLR

from mmseg_excel.engine.schedulers import PolyWarmupLR, poly_warmup_factor

# Official VOC schedule of the fixtures (README "Learning rate" section).
LR, WD, WARMUP, RATIO, POWER, MAX_ITERS = 1e-4, 0.01, 50, 1e-6, 1.0, 30000


class FourGroups(nn.Module):
    """One parameter per official group: backbone, norm, cls head, decoder."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2, bias=False)
        self.backbone_norm = nn.Parameter(torch.ones(2))
        self.cls_head = nn.Linear(2, 2, bias=False)
        self.decode_head = nn.Linear(2, 2, bias=False)


def _optim_wrapper():
    model = FourGroups()
    cfg = dict(
        type='OptimWrapper',
        optimizer=dict(
            type='AdamW', lr=LR, betas=(0.9, 0.999), eps=1e-8,
            weight_decay=WD),
        paramwise_cfg=dict(custom_keys={
            'cls_head': dict(lr_mult=10.0),
            'decode_head': dict(lr_mult=10.0)
        }))
    wrapper = build_optim_wrapper(model, cfg)
    # group order of the official optimizer
    names = ['backbone', 'backbone_norm', 'cls_head', 'decode_head']
    groups = wrapper.optimizer.param_groups
    assert len(groups) == 4
    ids = {id(p): n for n, p in model.named_parameters()}
    order = [
        next(i for i, g in enumerate(groups)
             if ids[id(g['params'][0])].startswith(n)) for n in names
    ]
    return wrapper, order


def _run(wrapper, schedulers, order, iters):
    """LR of the 4 groups in effect during each listed iteration."""
    got = {}
    last = max(iters)
    for it in range(last + 1):
        if it in iters:
            got[it] = [wrapper.optimizer.param_groups[i]['lr'] for i in order]
        wrapper.step()  # no gradients: AdamW skips, counters advance
        for s in schedulers:
            s.step()
    return got


SCHEDULE_30K = (Path(__file__).resolve().parents[2] / 'configs' / '_base_' /
                'schedules' / 'excel_30k.py')


class BackboneAndHead(nn.Module):
    """The two kinds of parameters the shipped schedule treats apart."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Linear(2, 2, bias=False)
        self.decode_head = nn.Linear(2, 2, bias=False)


@pytest.mark.parity
def test_shipped_schedule_matches_official_lr(parity_dir):
    """The optimiser and scheduler of configs/_base_/schedules/excel_30k.py
    (the VOC config's) reproduce the official LR of every stored iteration:
    backbone-side group = the official base groups, decode_head = the x10
    decoder group (quirk: effective LR 10x the nominal one)."""
    ref = torch.load(parity_dir / 'lr.pt', weights_only=False)['lr']
    cfg = Config.fromfile(str(SCHEDULE_30K))
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401
    model = BackboneAndHead()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper.copy())
    scheds = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper))
        for s in cfg.param_scheduler
    ]
    groups = wrapper.optimizer.param_groups
    ids = {id(p): n for n, p in model.named_parameters()}
    order = [
        next(i for i, g in enumerate(groups)
             if ids[id(g['params'][0])].startswith(n))
        for n in ('backbone', 'decode_head')
    ]
    got = _run(wrapper, scheds, order, set(ref))
    for it, lrs in ref.items():
        for g, official in zip((0, 1), (lrs[0], lrs[3])):
            a = got[it][g]
            assert abs(a - official) <= 1e-12 * abs(official), (it, g, a,
                                                                 official)
    assert cfg.train_cfg.max_iters == MAX_ITERS


@pytest.mark.parity
def test_poly_warmup_matches_official_lr(parity_dir):
    """PolyWarmupLR on the four official groups (the official optimiser's
    layout, incl. its empty-looking norm and classifier groups)."""
    ref = torch.load(parity_dir / 'lr.pt', weights_only=False)['lr']
    wrapper, order = _optim_wrapper()
    sched = PolyWarmupLR(
        wrapper,
        max_iters=MAX_ITERS,
        warmup_iters=WARMUP,
        warmup_ratio=RATIO,
        power=POWER,
        by_epoch=False)
    got = _run(wrapper, [sched], order, set(ref))
    for it, lrs in ref.items():
        assert len(lrs) == 4
        for g, (a, b) in enumerate(zip(got[it], lrs)):
            assert abs(a - b) <= 1e-12 * abs(b), (it, g, a, b)
    # the decoder group runs at 10x the nominal LR
    assert got[WARMUP][3] == pytest.approx(10 * got[WARMUP][0], rel=1e-12)


@pytest.mark.parity
def test_mmengine_linear_plus_poly_cannot_reproduce(parity_dir):
    """Documented reason for the custom scheduler: mmengine's pair differs."""
    ref = torch.load(parity_dir / 'lr.pt', weights_only=False)['lr']
    worst = {}
    for poly_begin in (0, WARMUP):
        wrapper, order = _optim_wrapper()
        scheds = [
            LinearLR(
                wrapper,
                start_factor=RATIO,
                end_factor=1.0,
                begin=0,
                end=WARMUP,
                by_epoch=False),
            PolyLR(
                wrapper,
                eta_min=0.0,
                power=POWER,
                begin=poly_begin,
                end=MAX_ITERS,
                by_epoch=False)
        ]
        got = _run(wrapper, scheds, order, set(ref))
        worst[poly_begin] = max(
            abs(got[it][3] - lrs[3]) / lrs[3] for it, lrs in ref.items())
    # both combinations are off by far more than float rounding
    assert worst[0] > 1e-4 and worst[WARMUP] > 1e-4, worst


def test_factor_closed_form():
    assert poly_warmup_factor(0, 50, 1e-6, 30000, 1.0) == pytest.approx(1e-6)
    assert poly_warmup_factor(25, 50, 1e-6, 30000,
                              1.0) == pytest.approx(0.5 + 0.5e-6)
    # not shifted by the warmup
    assert poly_warmup_factor(50, 50, 1e-6, 30000, 1.0) == 1 - 50 / 30000
    assert poly_warmup_factor(100, 10, 0.1, 200, 2.0) == pytest.approx(0.25)
    assert poly_warmup_factor(5, 0, 0.1, 10, 1.0) == 0.5


def test_lr_frozen_after_max_iters_and_registry():
    from mmseg.registry import PARAM_SCHEDULERS
    assert PARAM_SCHEDULERS.get('PolyWarmupLR') is PolyWarmupLR
    wrapper, order = _optim_wrapper()
    sched = PARAM_SCHEDULERS.build(
        dict(
            type='PolyWarmupLR',
            optimizer=wrapper,
            max_iters=10,
            warmup_iters=2,
            warmup_ratio=0.5,
            power=1.0,
            by_epoch=False))
    got = _run(wrapper, [sched], order, set(range(13)))
    base = LR * 10
    assert got[0][3] == pytest.approx(0.5 * base)
    assert got[1][3] == pytest.approx(0.75 * base)
    assert got[2][3] == pytest.approx(0.8 * base)
    assert got[9][3] == pytest.approx(0.1 * base)
    assert got[12][3] == got[9][3]  # no update after max_iters
    assert got[9][0] == pytest.approx(0.1 * LR)


@pytest.mark.parametrize('kwargs, match', [
    (dict(max_iters=0), 'max_iters'),
    (dict(max_iters=10, warmup_iters=11), 'warmup_iters'),
    (dict(max_iters=10, warmup_ratio=2.0), 'warmup_ratio'),
])
def test_bad_arguments(kwargs, match):
    wrapper, _ = _optim_wrapper()
    with pytest.raises(ValueError, match=match):
        PolyWarmupLR(wrapper, **kwargs)

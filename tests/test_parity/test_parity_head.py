# Copyright (c) mmseg-excel contributors. All rights reserved.
"""ExCELHead + losses vs the official training step (EXCEL.md §6–§8.3).

The official decoder weights (``decoder_state_dict.pt``, official key names,
fp16 values) go through ``excel2mmseg`` into an :class:`ExCELHead` in eval
mode (the fixtures were produced with the decoder's dropout off); the head
reads the per-layer features ``all_feats`` of ``encoder.pt`` (same images).
Every size comes from the fixture files.
"""
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mmseg_excel.models.decode_heads import ExCELHead
from mmseg_excel.models.losses import affinity_labels_from_mask

sys.path.insert(
    0, str(Path(__file__).resolve().parents[2] / 'tools' / 'model_converters'))
from excel2mmseg import convert_excel_state_dict  # noqa: E402

pytestmark = pytest.mark.parity

#: official affinity-loss weight (w_diver) and radius, VOC target switch
W_AFF, RADIUS, AFF_TARGET_SWITCH = 0.1, 8, 24000
STEPS = ('step_before_lvc.pt', 'step_after_lvc.pt')


def _load(parity_dir, name, device='cpu'):
    return torch.load(parity_dir / name, weights_only=False,
                      map_location=device)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def _head_from_fixtures(parity_dir, step, device='cpu'):
    sd = convert_excel_state_dict(
        _load(parity_dir, 'decoder_state_dict.pt'), prefix='')
    enc = _load(parity_dir, 'encoder.pt', device)
    n_layers, _, _, width = enc['all_feats'].shape
    num_classes, channels = step['forward']['seg'].shape[1], \
        step['forward']['attn_fts'].shape[1]
    n_blocks = len({k.split('.')[1] for k in sd if k.startswith('decoder_')})
    head = ExCELHead(
        in_channels=width,
        channels=channels,
        num_classes=num_classes,
        num_layers=n_layers,
        num_decoder_layers=n_blocks,
        num_heads=8,
        loss_aff=dict(
            type='ExCELAffinityLoss', radius=RADIUS, loss_weight=W_AFF))
    head.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return head.to(device).eval(), enc


@pytest.mark.parametrize('name', STEPS)
def test_head_forward_losses_and_grad(parity_dir, name, test_device):
    """On ``test_device`` (CPU unless ``MMSEG_EXCEL_TEST_DEVICE`` is set)."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    step = _load(parity_dir, name, test_device)
    head, enc = _head_from_fixtures(parity_dir, step, test_device)
    ref = step['forward']
    h, w = ref['seg'].shape[-2:]
    # the step ran on the encoder fixture's images
    torch.testing.assert_close(ref['attr_maps_raw'], enc['attr_maps_raw'])

    out = head(enc['all_feats'], hw=(h, w))
    assert _rel(out['seg'], ref['seg']) < 1e-5
    assert _rel(out['fused'], ref['attn_fts']) < 1e-5
    assert _rel(out['affinity'], ref['attn_pred']) < 1e-5

    # affinity target: pseudo labels until the VOC switch (24000), then
    # the network's own prediction; iteration 14000 still uses the labels
    pseudo = step['pseudo_labels'].long()
    aff_target = None
    if step['iteration'] >= AFF_TARGET_SWITCH:
        aff_target = F.interpolate(
            out['seg'],
            size=pseudo.shape[-2:],
            mode='bilinear',
            align_corners=False).argmax(1)
    target = pseudo if aff_target is None else aff_target
    z = affinity_labels_from_mask(target, (h, w), RADIUS)
    assert torch.equal(z, step['aff_label'])

    losses = head.loss_by_feat(out, pseudo, aff_target=aff_target)
    seg_loss = losses['loss_seg'].item()
    aff_loss = losses['loss_aff'].item() / W_AFF
    total = losses['loss_seg'] + losses['loss_aff']
    assert seg_loss == pytest.approx(step['seg_loss'], rel=1e-4)
    assert aff_loss == pytest.approx(step['aff_loss'], rel=1e-4)
    assert total.item() == pytest.approx(step['loss'], rel=1e-4)

    head.zero_grad()
    total.backward()
    grad_norm = torch.sqrt(
        sum((p.grad.double()**2).sum() for p in head.parameters()
            if p.grad is not None)).item()
    assert grad_norm == pytest.approx(step['decoder_grad_norm'], rel=1e-4)


def test_converted_state_is_complete(parity_dir):
    sd = _load(parity_dir, 'decoder_state_dict.pt')
    conv = convert_excel_state_dict(sd, prefix='')
    assert len(conv) == len(sd)
    assert all(torch.equal(a, b) for a, b in zip(conv.values(), sd.values()))

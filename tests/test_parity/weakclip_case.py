# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Builds our WeakCLIP from a WeakCLIP parity folder (every size from its
files): the CLIP file with the folder's override, the model config mapped
onto our registry components, the official non-CLIP weights converted."""
from pathlib import Path
from typing import Tuple

import torch

from mmseg_excel.utils.weakclip_keys import convert_weakclip_state_dict


def load(folder: Path, name: str):
    return torch.load(folder / name, weights_only=False)


def clip_file(folder: Path, out_dir: Path) -> str:
    """The folder's CLIP with ``clip_override.pt`` applied, as one file."""
    inputs = load(folder, 'inputs.pt')
    sd = torch.load(folder / inputs['clip_file'], weights_only=False)
    sd.update(load(folder, inputs.get('clip_override_file',
                                      'clip_override.pt')))
    path = out_dir / 'weakclip_case_clip.pt'
    torch.save(sd, path)
    return str(path)


def model_config(folder: Path, clip_path: str) -> dict:
    """Our WeakCLIP config from ``inputs.pt['model_cfg']``."""
    inputs = load(folder, 'inputs.pt')
    mc = inputs['model_cfg']
    bb = mc['backbone']
    out_indices = load(folder, 'backbone.pt')['out_indices']
    cd, te = mc['context_decoder'], mc['text_encoder']
    neck, head = mc['neck'], mc['decode_head']
    norm = inputs['img_norm_cfg']
    names = list(mc['class_names'])
    return dict(
        type='WeakCLIP',
        data_preprocessor=dict(
            type='SegDataPreProcessor', mean=list(norm['mean']),
            std=list(norm['std']), bgr_to_rgb=bool(norm['to_rgb'])),
        backbone=dict(
            type='CLIPViTBackbone', model_name=None, pretrained=clip_path,
            svc=None, frozen=False, out_indices=list(out_indices),
            drop_path_rate=bb['drop_path_rate'], class_token_twice=True,
            pos_embed_grid=bb['input_resolution'] // bb['patch_size'],
            drop_remainder=True),
        adapter=dict(type='PyramidAdapter', in_channels=bb['width'],
                     norm_cfg=dict(type='BN')),
        text_encoder=dict(type='CLIPTextContextEncoder', model_name=None,
                          pretrained=clip_path,
                          context_length=te['context_length']),
        context_decoder=dict(
            type='CoAttentionMatching', visual_dim=cd['visual_dim'],
            width=cd['transformer_width'], num_heads=cd['transformer_heads'],
            num_layers=cd['transformer_layers'], dropout=cd['dropout'],
            decouple=cd['if_decouple']),
        neck=dict(type='FPN', in_channels=list(neck['in_channels']),
                  out_channels=neck['out_channels'],
                  num_outs=neck['num_outs'], init_cfg=None),
        decode_head=dict(
            type='FPNHead', in_channels=list(head['in_channels']),
            in_index=list(head['in_index']),
            feature_strides=list(head['feature_strides']),
            channels=head['channels'], dropout_ratio=head['dropout_ratio'],
            num_classes=head['num_classes'],
            norm_cfg=dict(type='BN', requires_grad=True),
            align_corners=head['align_corners'], init_cfg=None,
            loss_decode=dict(type='CrossEntropyLoss')),
        class_names=names,
        name_context_length=mc['context_length'],
        loss_size=list(head['feature_size']),
        identity_loss=dict(
            type='CrossEntropyLoss',
            loss_weight=mc['identity_head']['loss_decode']['loss_weight'],
            avg_non_ignore=False),
        test_cfg=dict(mc['test_cfg']))


def build_model(folder: Path, out_dir: Path) -> Tuple[torch.nn.Module, dict]:
    """Our model with the official weights; returns it and the load report."""
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    import mmseg_excel.models  # noqa: F401
    register_all_modules(init_default_scope=True)
    cfg = model_config(folder, clip_file(folder, out_dir))
    model = MODELS.build(cfg)
    state = load(folder, 'model_state_dict.pt')['state_dict']
    state = {
        k: (v.float() if v.is_floating_point() else v)
        for k, v in convert_weakclip_state_dict(state).items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    return model, dict(missing=missing, unexpected=unexpected, state=state)

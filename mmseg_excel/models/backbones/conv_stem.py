# Copyright (c) mmseg-excel contributors. All rights reserved.
"""A small convolutional stem in place of a CLIP ViT's patch embedding.

A hybrid ViT (the Toy-World CLIP, mmseg_excel/data/toy_clip/README.md): the stride-``p`` patch
convolution ``visual.conv1`` is replaced by ``log2(p)`` stages of
``n × (conv 3×3, BatchNorm, ReLU) + max-pool 2`` (``n`` = ``convs_per_stage``,
default 2); the output is the same
``(B, width, H / p, W / p)`` token grid, so the transformer blocks, their
attention (SVC, LVC, CAA) and every consumer of the patch grid are
unchanged. The stem is declared by a ``"conv_stem"`` entry of an open_clip
model JSON (see :func:`mmseg_excel.utils.clip_weights.register_model_config`)::

    "conv_stem": {"channels": [32, 64], "convs_per_stage": 1}

``channels`` are the widths of all stages but the last, which outputs the
ViT width. The module exposes ``stride``, ``out_channels`` and ``weight`` like
the ``nn.Conv2d`` it replaces, so code that reads the patch size, the width or
the parameter dtype from ``conv1`` needs no special case.
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn


class ConvStem(nn.Sequential):
    """``len(channels) + 1`` stages of ``convs_per_stage`` × (conv-BN-ReLU)
    + max-pool 2.

    Args:
        out_channels: channels of the last stage (the ViT width).
        channels: channels of the earlier stages.
        patch_size: the patch size the stem replaces; must be
            ``2 ** (len(channels) + 1)``.
        in_channels: image channels.
        convs_per_stage: 3×3 convolutions per stage (>= 1).
    """

    def __init__(self, out_channels: int, channels: Sequence[int],
                 patch_size: int, in_channels: int = 3,
                 convs_per_stage: int = 2) -> None:
        if int(convs_per_stage) < 1:
            raise ValueError(f'convs_per_stage must be >= 1, got '
                             f'{convs_per_stage}')
        widths = [int(c) for c in channels] + [int(out_channels)]
        if 2**len(widths) != int(patch_size):
            raise ValueError(
                f'conv_stem with {len(widths)} stages has stride '
                f'{2 ** len(widths)}, but the ViT patch size is {patch_size}: '
                f'give {int(patch_size).bit_length() - 2} entries in '
                f'"channels" (a power-of-two patch size)')
        stages = []
        for c_in, c_out in zip([in_channels] + widths[:-1], widths):
            layers = []
            for i in range(int(convs_per_stage)):
                layers += [
                    nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(inplace=True)
                ]
            stages.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        super().__init__(*stages)
        self.stride: Tuple[int, int] = (int(patch_size), ) * 2
        self.out_channels = int(out_channels)
        self.in_channels = int(in_channels)

    @property
    def weight(self) -> torch.Tensor:
        """The last convolution's weight (dtype / device anchor, as
        ``conv1.weight`` of a plain patch embedding)."""
        return self[-1][-4].weight


def attach_conv_stem(model: nn.Module, spec: dict) -> nn.Module:
    """Replace ``model.visual.conv1`` of an ``open_clip.CLIP`` by a
    :class:`ConvStem` built from ``spec`` (the JSON ``conv_stem`` entry)."""
    visual = model.visual
    conv1 = visual.conv1
    if not isinstance(conv1, nn.Conv2d):
        raise TypeError(f'{type(visual).__name__}.conv1 is not a patch '
                        'convolution; cannot attach a conv stem')
    unknown = set(spec) - {'channels', 'convs_per_stage'}
    if unknown:
        raise ValueError(f'unknown conv_stem keys {sorted(unknown)}; '
                         'expected "channels" [, "convs_per_stage"]')
    patch = conv1.stride[0]
    visual.conv1 = ConvStem(
        conv1.out_channels, spec.get('channels', ()), patch,
        in_channels=conv1.in_channels,
        convs_per_stage=spec.get('convs_per_stage', 2)).to(
            conv1.weight.dtype)
    return model

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Model building and single-image inference for the tools.

``init_wsss_model`` builds a config's model, loads trained weights strictly
and chooses the pseudo-label mode (training-free / trained, docs/
evaluation.md); ``infer_cams`` runs one image of any size through the
config's test pipeline and ``generate_pseudo_labels`` with the image-level
labels a user names (``tools/analysis_tools/visualize_cams.py``).
"""
from typing import Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint


def load_trained_weights(model: torch.nn.Module, path: str) -> None:
    """Load a trained checkpoint strictly.

    Our checkpoints leave out the frozen CLIP (it is rebuilt from its own
    weights), so exactly the keys the model itself does not save may be
    missing; any other missing or unexpected key is an error (an
    unconverted official checkpoint would otherwise drive LVC with a random
    decoder).
    """
    ckpt = _load_checkpoint(path, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{path} holds no state dict')
    state = {
        (k[7:] if k.startswith('module.') else k): v
        for k, v in state.items()
    }
    saved = set(model.state_dict().keys())
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k in saved]
    if missing or unexpected:
        raise KeyError(
            f'{path} does not match {type(model).__name__}: missing '
            f'{missing[:8]}{" …" if len(missing) > 8 else ""} '
            f'({len(missing)}), unexpected {unexpected[:8]}'
            f'{" …" if len(unexpected) > 8 else ""} ({len(unexpected)}). '
            'Convert official checkpoints with '
            'tools/model_converters/excel2mmseg.py')


def pseudo_label_mode(cfg: Config, checkpoint: Optional[str]) -> None:
    """Training-free vs trained pseudo labels (``test_cfg.use_decoder``).

    Unset: trained when ``--checkpoint`` is given, training-free otherwise.
    A contradiction (trained without weights, or weights for a config that
    pins the training-free mode) is an error, never a silent random decoder.
    """
    test_cfg = cfg.model.get('test_cfg') or {}
    if cfg.model.get('type') != 'ExCEL':
        return
    use = test_cfg.get('use_decoder', None)
    if use is None:
        use = checkpoint is not None
    elif use and checkpoint is None:
        raise ValueError('model.test_cfg.use_decoder=True needs --checkpoint '
                         '(the trained decoder drives LVC)')
    elif not use and checkpoint is not None:
        raise ValueError(
            'this config pins training-free pseudo labels '
            '(model.test_cfg.use_decoder=False) but --checkpoint was given; '
            'use the training config for trained pseudo labels')
    cfg.model.test_cfg = dict(test_cfg, use_decoder=bool(use))


def config_classes(cfg: Config) -> tuple:
    """Classes (background first) and palette of the config's test
    dataset: its ``metainfo``, else the dataset class's ``METAINFO``."""
    from mmseg.registry import DATASETS
    ds = cfg.test_dataloader.dataset
    meta = dict(ds.get('metainfo') or {})
    if not meta.get('classes'):
        meta = dict(DATASETS.get(ds['type']).METAINFO, **meta)
    if not meta.get('classes'):
        raise KeyError(f'the test dataset {ds["type"]} of the config names '
                       'no classes (metainfo.classes)')
    classes = tuple(meta['classes'])
    palette = meta.get('palette')
    if palette is None:
        from mmseg_excel.datasets import voc_colormap
        palette = voc_colormap(len(classes))
    return classes, [list(c) for c in palette]


def init_wsss_model(cfg: Config,
                    checkpoint: Optional[str] = None,
                    device: Optional[str] = None) -> torch.nn.Module:
    """Build ``cfg.model`` in eval mode on ``device`` (default: cuda when
    available), with ``checkpoint`` loaded strictly and the pseudo-label
    mode set from it (:func:`pseudo_label_mode`)."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    import mmseg_excel  # noqa: F401  (registers the components)
    from mmseg.registry import MODELS
    pseudo_label_mode(cfg, checkpoint)
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_trained_weights(model, checkpoint)
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    return model.to(device).eval()


def infer_cams(model: torch.nn.Module, cfg: Config, image: str,
               class_ids: Sequence[int], num_classes: int) -> dict:
    """Maps and pseudo label of one image file for the named classes.

    The image goes through the config's test pipeline (at its original
    size; the model's data preprocessor makes the network input), with the
    image-level labels ``class_ids`` (dataset ids, background 0 excluded).
    Returns ``generate_pseudo_labels``'s output for the image (first entry of
    each list) and the packed ``data_sample``.
    """
    if not hasattr(model, 'generate_pseudo_labels'):
        raise TypeError(f'{type(model).__name__} has no '
                        'generate_pseudo_labels method')
    bad = [c for c in class_ids if not 0 < int(c) < num_classes]
    if bad:
        raise ValueError(f'class ids {bad} are not foreground classes of a '
                         f'{num_classes}-class dataset')
    pipeline = []
    for t in cfg.test_dataloader.dataset.pipeline:
        t = dict(t)
        if t['type'] == 'LoadImageLevelLabels':
            t['keep_mask'] = False  # a user's image has no mask
        pipeline.append(t)
    results = Compose(pipeline)(
        dict(img_path=image, cls_label_ids=list(map(int, class_ids)),
             num_classes=num_classes, seg_fields=[], label_map=None,
             reduce_zero_label=False))
    data = model.data_preprocessor(
        dict(inputs=[results['inputs']],
             data_samples=[results['data_samples']]), False)
    with torch.no_grad():
        out = model.generate_pseudo_labels(data['inputs'],
                                           data['data_samples'])
    first = {}
    for k, v in out.items():
        first[k] = v[0] if isinstance(v, (list, torch.Tensor)) else v
    first['data_sample'] = data['data_samples'][0]
    return first


def cam_classes(out: dict, j: int = 0) -> Optional[list]:
    """Dataset class ids of the channels of ``cams_highres`` of image ``j``
    in a ``generate_pseudo_labels`` output: ExCEL's ``keys`` (background
    first), else CLIP-ES's ``class_idx`` / ``valid`` (foreground indices)."""
    keys = out.get('keys')
    if keys is not None:
        return (keys[j] if isinstance(keys, list) else keys)[1:].tolist()
    if out.get('class_idx') is not None:
        idx, valid = out['class_idx'], out['valid']
        if idx.dim() == 2:
            idx, valid = idx[j], valid[j]
        return (idx[valid] + 1).tolist()
    return None

# Copyright (c) mmseg-excel contributors. All rights reserved.
"""Bad inputs of the ExCEL components give a clear error or a documented
result, never a crash deep inside a matmul (EXCEL.md §10).

Covered with the tiny CLIP of ``tests/conftest.py``:

* a missing CLIP weights file → ``FileNotFoundError`` naming the path, from
  the backbone, the text head and the whole segmentor;
* an attribute bank built for other classes or with another CLIP →
  ``ValueError`` saying so, from ``ExCELTextHead`` (the bank functions
  themselves are tested in ``test_text/test_text_units.py``);
* an image smaller than one patch → ``ValueError`` naming the patch size,
  raised before the patch embedding runs (also through the data
  preprocessor at test time; in training mode its ``size_divisor`` pads the
  image to one patch, a defined result);
* an image without foreground label → all-background pseudo label, also
  through ``ExCEL.generate_pseudo_labels`` and a training step;
* text head / CAM head / decode head class counts that disagree →
  ``ValueError``;
* an unreadable or vanished image file → an error naming the file.
"""
import re
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from PIL import Image

BASE_MODEL_CONFIG = (Path(__file__).resolve().parents[2] / 'configs' /
                     '_base_' / 'models' / 'excel_clip-vit-b16.py')
CLASSES = ['apple', 'star', 'ring']
ATTRS = ['it is red.', 'it is round.', 'it has a stem.', 'it is small.']


@pytest.fixture(scope='module', autouse=True)
def _scope():
    init_default_scope('mmseg')
    import mmseg_excel  # noqa: F401
    torch.set_num_threads(1)


def _clip(tiny: Dict, pretrained: Optional[str] = None) -> dict:
    """CLIP source dict of the tiny CLIP (open_clip layout)."""
    return dict(
        model_name=tiny['name'], pretrained=pretrained or tiny['open_clip'])


def _excel_cfg(tiny: Dict, **over) -> dict:
    """The shipped ExCEL model config sized for the tiny CLIP (3 blocks,
    width 64), then ``over`` merged into its components."""
    cfg = Config.fromfile(BASE_MODEL_CONFIG)
    sizes = dict(
        backbone=dict(**_clip(tiny), svc=dict(num_blocks=2)),
        text_head=dict(
            clip=_clip(tiny), class_names=CLASSES, bg_names=['sky'],
            tse=None),
        cam_head=dict(num_fg=3),
        pseudo_labeler=dict(
            affinity=dict(num_layers=2, box_threshold=0.6),
            par=dict(dilations=(1, 2), num_iter=3)),
        decode_head=dict(
            in_channels=64,
            channels=16,
            num_classes=4,
            num_layers=3,
            num_decoder_layers=1,
            num_heads=2,
            loss_aff=dict(radius=2)))
    for options in (sizes, over):
        cfg.merge_from_dict({f'model.{k}': v for k, v in options.items()})
    return cfg.model.to_dict()


def _build(cfg: dict):
    from mmseg.registry import MODELS
    return MODELS.build(cfg)


@pytest.fixture(scope='module')
def model(tiny_clip_files):
    return _build(_excel_cfg(tiny_clip_files)).eval()


def _samples(labels: List[List[int]], hw) -> list:
    """SegDataSamples with multi-hot ``gt_cls_label`` over 3 classes."""
    from mmseg.structures import SegDataSample
    out = []
    for present in labels:
        ds = SegDataSample()
        cls = torch.zeros(len(CLASSES))
        cls[present] = 1
        ds.set_data(dict(gt_cls_label=cls))
        ds.set_metainfo(dict(img_shape=tuple(hw), ori_shape=tuple(hw),
                             pad_shape=tuple(hw)))
        out.append(ds)
    return out


# ------------------------------------------------------------ CLIP weights
def test_missing_clip_weights_file_is_named(tiny_clip_files, tmp_path):
    from mmseg_excel.models.backbones import CLIPViTBackbone
    from mmseg_excel.models.text import ExCELTextHead
    missing = str(tmp_path / 'weights' / 'ViT-B-16.pt')
    named = re.escape(missing)
    with pytest.raises(FileNotFoundError, match=named):
        CLIPViTBackbone(model_name=None, pretrained=missing)
    with pytest.raises(FileNotFoundError, match=named):
        ExCELTextHead(
            clip=dict(model_name=None, pretrained=missing),
            class_names=CLASSES)
    # the whole model (backbone first, then the text head)
    with pytest.raises(FileNotFoundError, match=named):
        _build(_excel_cfg(tiny_clip_files, backbone=_clip(
            tiny_clip_files, missing)))
    with pytest.raises(FileNotFoundError, match=named):
        _build(_excel_cfg(tiny_clip_files, text_head=dict(
            clip=_clip(tiny_clip_files, missing))))


# --------------------------------------------------------- attribute bank
def _write_desc(path: Path, classes: List[str] = CLASSES) -> str:
    import json
    path.write_text(
        json.dumps({c: [f'A clean origami {c}. {a}' for a in ATTRS]
                    for c in classes}))
    return str(path)


@pytest.fixture(scope='module')
def bank_file(tiny_clip_files, tmp_path_factory) -> Dict[str, str]:
    """A bank built for CLASSES with the tiny CLIP, and its descriptions."""
    from mmseg_excel.models.text import (build_attribute_bank,
                                         get_clip_tokenizer, load_clip_model,
                                         save_attribute_bank)
    tmp = tmp_path_factory.mktemp('bank')
    desc = _write_desc(tmp / 'desc.json')
    clip = load_clip_model(tiny_clip_files['name'],
                           tiny_clip_files['open_clip'])
    bank = build_attribute_bank(
        clip, get_clip_tokenizer(tiny_clip_files['name']), desc, 4, n_init=2)
    path = str(tmp / 'bank.pt')
    save_attribute_bank(bank, path)
    return dict(bank=path, desc=desc, tmp=str(tmp))


def _text_head(tiny: Dict, tse: dict, class_names=CLASSES,
               pretrained: Optional[str] = None):
    from mmseg_excel.models.text import ExCELTextHead
    return ExCELTextHead(
        clip=_clip(tiny, pretrained),
        class_names=class_names,
        bg_names=['sky'],
        tse=dict(dict(num_clusters=4, keep_ratio=0.5), **tse))


def test_bank_file_loads_for_its_own_classes_and_clip(tiny_clip_files,
                                                      bank_file):
    """Control for the failures below: the matching setting works."""
    head = _text_head(tiny_clip_files, dict(bank_file=bank_file['bank']))
    assert head.bank_info['source'] == bank_file['bank']
    assert head().shape == (4, 32)


def test_bank_for_other_classes(tiny_clip_files, bank_file, tmp_path):
    # other class count: named, with both counts
    with pytest.raises(ValueError,
                       match='has 3 classes but the model has 4'):
        _text_head(tiny_clip_files, dict(bank_file=bank_file['bank']),
                   class_names=CLASSES + ['moon'])
    # same count, other classes in the configured descriptions
    other = _write_desc(tmp_path / 'other.json', ['cat', 'dog', 'cow'])
    with pytest.raises(ValueError, match='class order differs'):
        _text_head(tiny_clip_files,
                   dict(bank_file=bank_file['bank'], descriptions=other))
    # an upstream list bank [C, flag] of the 20 VOC classes
    up = tmp_path / 'voc_upstream.pth'
    torch.save([torch.rand(32, 4), torch.ones(20, 4)], up)
    with pytest.raises(ValueError, match='has 20 classes but the model has 3'):
        _text_head(tiny_clip_files, dict(bank_file=str(up)))


def test_bank_built_with_another_clip(tiny_clip_files, bank_file, tmp_path):
    import open_clip
    # same architecture, other weights: the text-tower fingerprint differs
    torch.manual_seed(7)
    other = open_clip.create_model(tiny_clip_files['name'])
    other_file = str(tmp_path / 'other_clip.pt')
    torch.save(other.state_dict(), other_file)
    with pytest.raises(ValueError, match='built with another CLIP'):
        _text_head(tiny_clip_files, dict(bank_file=bank_file['bank']),
                   pretrained=other_file)
    # an upstream bank of ViT-B/16 (512-d centres, no fingerprint): the
    # dimension check fires before TSE multiplies text and centres
    up = tmp_path / 'vitb16_upstream.pth'
    torch.save([torch.rand(512, 4), torch.ones(3, 4)], up)
    with pytest.raises(ValueError, match='dim 512 but the CLIP text '
                       'embeddings have dim 32'):
        _text_head(tiny_clip_files, dict(bank_file=str(up)))


# ------------------------------------------------- image below one patch
def test_image_smaller_than_one_patch_fails_before_any_matmul(model):
    calls = []
    hook = model.backbone.conv1.register_forward_pre_hook(
        lambda mod, args: calls.append(args[0].shape))
    try:
        for hw in [(8, 8), (8, 32), (32, 15)]:
            x = torch.randn(1, 3, *hw)
            with pytest.raises(ValueError,
                               match=rf'{hw[0]}x{hw[1]} is smaller than one '
                               r'16x16 patch'):
                model.backbone(x)
            with pytest.raises(ValueError, match='16x16 patch'):
                model.generate_pseudo_labels(x, _samples([[0]], hw))
            with pytest.raises(ValueError, match='16x16 patch'):
                model.predict(x)
        assert calls == []  # the patch embedding never ran
        model.backbone(torch.randn(1, 3, 16, 16))
        assert len(calls) == 1  # the hook does record real forwards
    finally:
        hook.remove()


def test_small_image_through_the_data_preprocessor(model):
    """At test time the WSSS data preprocessor resizes every image to the
    network size (the official protocol), so an 8x8 image gets a defined
    pseudo label at its own 8x8 size; the raw 8x8 tensor given to the model
    directly gets the clear error. In training mode ``size_divisor=16``
    pads it to one 16x16 patch: a defined result, whose real 8x8 corner
    holds only the image's class."""
    img = torch.randint(0, 255, (3, 8, 8), dtype=torch.uint8)
    data = model.data_preprocessor(
        dict(inputs=[img], data_samples=_samples([[1]], (8, 8))), False)
    assert tuple(data['inputs'].shape[-2:]) == \
        model.data_preprocessor.test_size
    out = model.generate_pseudo_labels(data['inputs'], data['data_samples'])
    assert tuple(out['pseudo_labels'][0].shape) == (8, 8)
    assert set(out['pseudo_labels'][0].unique().tolist()) <= {0, 2}
    raw = img.float()[None]
    with pytest.raises(ValueError, match='8x8 is smaller than one 16x16'):
        model.generate_pseudo_labels(raw, _samples([[1]], (8, 8)))
    data = model.data_preprocessor(
        dict(inputs=[img], data_samples=_samples([[1]], (8, 8))), True)
    assert tuple(data['inputs'].shape) == (1, 3, 16, 16)
    model.set_train_iter(0)
    losses = model.loss(data['inputs'], data['data_samples'])
    lab = data['data_samples'][0].pseudo_sem_seg.data[0]
    assert tuple(lab.shape) == (16, 16)
    assert set(lab[:8, :8].unique().tolist()) <= {0, 2}
    assert all(torch.isfinite(v).all() for v in losses.values())


# ------------------------------------------------- label vector length
def test_label_vector_of_other_length_is_refused(model):
    """VOC's 20 labels given to a 3-class model: an error naming both
    lengths, from pseudo labels, training and the trained-PL path."""
    from mmseg.structures import SegDataSample
    x = torch.randn(1, 3, 32, 32)
    for n in (20, 2):
        ds = SegDataSample()
        ds.set_data(dict(gt_cls_label=torch.ones(n)))
        ds.set_metainfo(dict(img_shape=(32, 32), ori_shape=(32, 32),
                             pad_shape=(32, 32)))
        msg = rf'has {n} entries but the model has 3 foreground classes'
        with pytest.raises(ValueError, match=msg):
            model.generate_pseudo_labels(x, [ds])
        model.set_train_iter(0)
        with pytest.raises(ValueError, match=msg):
            model.loss(x, [ds])
    # the right length passes
    model.generate_pseudo_labels(x, _samples([[0, 1]], (32, 32)))


# ------------------------------------------------- no foreground label
def test_image_without_foreground_label_is_all_background(model):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 48)
    out = model.generate_pseudo_labels(x, _samples([[], [0, 2]], (32, 48)))
    lab = out['pseudo_labels']
    assert (lab[0] == 0).all()
    assert (out['cams_with_bkg'][0][0] == 1).all()
    assert out['keys'][0].tolist() == [0]
    assert out['keys'][1].tolist() == [0, 1, 3]
    # the other image of the batch is what it is alone
    alone = model.generate_pseudo_labels(x[1:], _samples([[0, 2]], (32, 48)))
    assert torch.equal(alone['pseudo_labels'][0], lab[1])
    assert set(lab[1].unique().tolist()) <= {0, 1, 3}
    # a batch of label-free images only
    none = model.generate_pseudo_labels(x, _samples([[], []], (32, 48)))
    assert all((p == 0).all() for p in none['pseudo_labels'])


def test_training_step_on_label_free_image_is_finite(tiny_clip_files):
    model = _build(_excel_cfg(tiny_clip_files)).train()
    model.set_train_iter(0)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    samples = _samples([[], [1]], (64, 64))
    losses = model.loss(x, samples)
    assert torch.equal(samples[0].pseudo_sem_seg.data,
                       torch.zeros(1, 64, 64, dtype=torch.long))
    assert isinstance(samples[1].pseudo_sem_seg, PixelData)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    assert torch.isfinite(total)
    total.backward()


def test_mask_supervision_trains_on_the_exact_masks(tiny_clip_files):
    """``mask_supervision=True`` (the fully supervised ceiling): the decoder
    losses are those of the exact masks, the pseudo labeler never runs."""
    model = _build(_excel_cfg(tiny_clip_files, mask_supervision=True)).eval()
    model.set_train_iter(0)

    def no_pseudo_labels(*args, **kwargs):
        raise AssertionError('pseudo labeler called under mask_supervision')

    model.pseudo_labeler.forward = no_pseudo_labels
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 64)
    masks = torch.randint(0, 4, (2, 64, 64))
    samples = _samples([[0], [1, 2]], (64, 64))
    for ds, m in zip(samples, masks):
        ds.gt_sem_seg = PixelData(data=m[None])
    losses = model.loss(x, samples)
    with torch.no_grad():
        feats = model.extract_feat(x)
        head_out = model.decode_head(feats.all_feats, feats.hw)
        want = model.decode_head.loss_by_feat(head_out, masks)
        other = model.decode_head.loss_by_feat(head_out, torch.zeros_like(masks))
    assert sorted(losses) == sorted(want)  # no pseudo-label statistics
    for k in (k for k in want if k.startswith('loss')):
        torch.testing.assert_close(losses[k].detach(), want[k])
        assert not torch.allclose(want[k], other[k]), k
    # the training pipeline must keep the masks: a clear error otherwise
    with pytest.raises(ValueError, match='keep_mask=True'):
        model.loss(x, _samples([[0], [1]], (64, 64)))


def test_training_iteration_unknown_is_an_error(tiny_clip_files):
    """Outside mmengine's Runner and without set_train_iter, loss() cannot
    know whether LVC is on: a clear error, never LVC silently off."""
    from mmengine.logging import MessageHub
    model = _build(_excel_cfg(tiny_clip_files)).train()
    MessageHub.get_instance('test-no-iteration-recorded')  # fresh, current
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(RuntimeError, match='does not know the training '
                       'iteration'):
        model.loss(x, _samples([[1]], (64, 64)))
    # the Runner's RuntimeInfoHook records it: read from the MessageHub
    hub = MessageHub.get_instance('test-iteration-recorded')
    hub.update_info('iter', model.lvc_start_iter)
    assert model.lvc_active
    hub.update_info('iter', model.lvc_start_iter - 1)
    assert not model.lvc_active


# ------------------------------------------------- class-count mismatch
def test_class_count_mismatch_between_heads(tiny_clip_files):
    with pytest.raises(ValueError,
                       match=r'decode_head predicts 5 classes \(expected 3 '
                       r'\+ background\)'):
        _build(_excel_cfg(tiny_clip_files, decode_head=dict(num_classes=5)))
    with pytest.raises(ValueError, match='cam_head.num_fg=2 but text_head '
                       'has 3'):
        _build(_excel_cfg(tiny_clip_files, cam_head=dict(num_fg=2)))
    # a 21-class (VOC) decode head with the 20 VOC names works
    model = _build(
        _excel_cfg(
            tiny_clip_files,
            text_head=dict(class_names='voc_excel', bg_names='voc'),
            cam_head=dict(num_fg=20),
            decode_head=dict(num_classes=21)))
    assert model.num_classes == 21


# ------------------------------------------------- image files
@pytest.fixture
def voc_dataset(tmp_path):
    from mmseg_excel.testing.tiny_datasets import make_tiny_voc
    data = make_tiny_voc(str(tmp_path / 'voc'), num_train=3, num_val=1)

    def build():
        from mmseg.registry import DATASETS
        return DATASETS.build(
            dict(
                type='VOCWSSSDataset',
                data_root=data['root'],
                ann_file='ImageSets/Segmentation/train_aug.txt',
                pipeline=[
                    dict(type='LoadImageFromFile', imdecode_backend='pillow'),
                    dict(type='LoadImageLevelLabels', keep_mask=False),
                    dict(type='PackWSSSInputs')
                ]))

    return data, build


def test_unreadable_image_names_the_file(voc_dataset):
    data, build = voc_dataset
    ds = build()
    assert ds[1]['inputs'].shape[0] == 3  # control: readable
    img_id = data['splits']['train_aug'][1]
    Path(data['img_paths'][img_id]).write_bytes(b'not a jpeg at all')
    path = data['img_paths'][img_id]
    with pytest.raises(OSError, match=re.escape(path)) as err:
        ds[1]
    assert 'UnidentifiedImageError' in str(err.value)


def test_vanished_image_names_the_file(voc_dataset):
    data, build = voc_dataset
    ds = build()
    img_id = data['splits']['train_aug'][2]
    Path(data['img_paths'][img_id]).unlink()
    with pytest.raises(FileNotFoundError,
                       match=re.escape(data['img_paths'][img_id])):
        ds[2]
    # at load time the split check names it too
    with pytest.raises(FileNotFoundError, match=img_id):
        build()


# ------------------------------------------------- image modes
def _load(path, backend='pillow', cls='LoadWSSSImageFromFile'):
    from mmseg.registry import TRANSFORMS
    t = TRANSFORMS.build(dict(type=cls, imdecode_backend=backend))
    return t(dict(img_path=str(path)))['img']


def test_grayscale_and_rgba_images_load_as_three_channels(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (20, 30), np.uint8)
    Image.fromarray(gray, 'L').save(tmp_path / 'gray.png')
    img = _load(tmp_path / 'gray.png')
    assert img.shape == (20, 30, 3) and img.dtype == np.uint8
    for c in range(3):  # replicated
        np.testing.assert_array_equal(img[..., c], gray)
    rgba = rng.integers(0, 256, (20, 30, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent: the colours still count
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 'rgba.png')
    img = _load(tmp_path / 'rgba.png')
    assert img.shape == (20, 30, 3)
    np.testing.assert_array_equal(img[..., ::-1], rgba[..., :3])  # BGR


def test_16bit_image_is_rescaled_not_clipped(tmp_path):
    from mmseg_excel.datasets.transforms import read_rgb_image
    wide = (np.arange(40 * 50).reshape(40, 50) * 32).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / 'wide.png')
    with Image.open(tmp_path / 'wide.png') as im:
        assert im.mode.startswith('I')
    # mmcv's pillow path clips every value above 255 (an all-white image)
    clipped = _load(tmp_path / 'wide.png', cls='LoadImageFromFile')
    assert (clipped == 255).mean() > 0.9
    img = _load(tmp_path / 'wide.png')
    want = (wide >> 8).astype(np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], want)
    # the same as OpenCV's 16->8 bit conversion and the CRF/CLIP-ES reader
    np.testing.assert_array_equal(img, _load(tmp_path / 'wide.png', 'cv2'))
    np.testing.assert_array_equal(read_rgb_image(str(tmp_path / 'wide.png')),
                                  img[..., ::-1])


def test_float_image_is_refused_naming_the_file(tmp_path):
    path = tmp_path / 'depth.tif'
    Image.fromarray(np.ones((8, 8), np.float32)).save(path)
    with pytest.raises(ValueError, match=re.escape(str(path)) + '.*mode F'):
        _load(path)

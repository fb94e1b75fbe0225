# Copyright (c) mmseg-excel contributors. All rights reserved.
"""CLIP-ES CAA and dense CRF against the official outputs (clip_es/caa.pt, crf.pt).

Sizes, labels and counts are read from the fixtures; tolerances follow
clip_es/README.md (CAA 1e-5 relative, box masks exact, fp16 maps 1e-3
absolute, CRF exact).
"""
import numpy as np
import pytest
import torch

from mmseg_excel.models.pseudo_labels import (AttentionAffinity, DenseCRF,
                                              box_masks_from_maps,
                                              clip_es_prob, minmax_upsample,
                                              sinkhorn_normalise)

pytestmark = pytest.mark.parity


def _load(p):
    return torch.load(p, weights_only=False)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


def test_caa_matches_official(clip_es_parity_dir):
    caa = _load(clip_es_parity_dir / 'caa.pt')
    grad = _load(clip_es_parity_dir / 'gradcam.pt')
    thr = float(caa['box_threshold'])
    n_layers = grad['images'][0]['attn_weights_last8'].shape[0]
    for img_caa, img_g in zip(caa['images'], grad['images']):
        w_attn = img_g['attn_weight_mean8']
        p = w_attn.shape[0]
        # the head-averaged maps of the last layers, class token dropped, averaged
        mod_all = AttentionAffinity(
            num_layers=n_layers, box_threshold=thr, sinkhorn_iters=3, power=2)
        mean = mod_all.mean_attention(img_g['attn_weights_last8'][:, None])[0]
        assert _rel(mean, w_attn) < 1e-5
        assert _rel(sinkhorn_normalise(w_attn, 3), img_caa['sinkhorn']) < 1e-5
        labels = [pl['class_id'] for pl in img_caa['per_label']]
        cams = torch.stack([pl['grayscale_cam'] for pl in img_g['per_label']])
        k, h, w = cams.shape
        assert h * w == p
        mod = AttentionAffinity(
            num_layers=1,
            box_threshold=thr,
            sinkhorn_iters=3,
            power=2,
            drop_class_token=False)
        refined, boxes, aff = mod(w_attn[None, None],
                                  cams.reshape(1, k, p).transpose(1, 2),
                                  (h, w))
        assert _rel(aff[0], img_caa['affinity']) < 1e-5
        for j, pl in enumerate(img_caa['per_label']):
            assert pl['class_id'] == labels[j]
            assert torch.equal(boxes[0, j], pl['box_mask']), f'box mask {j}'
            # every official rectangle lies in the union; each connected
            # component's clamped box is one of the official rectangles
            bx = pl['boxes']
            for x0, y0, x1, y1 in bx.tolist():
                assert bool((pl['box_mask'][y0:y1, x0:x1] == 1).all())
            assert _rel(refined[0, j], pl['cam_refined']) < 1e-5
        hi_hw = img_caa['per_label'][0]['cam_refined_highres'].shape
        hi = minmax_upsample(refined, hi_hw)[0]
        for j, pl in enumerate(img_caa['per_label']):
            assert (hi[j] - pl['cam_refined_highres']).abs().max() < 1e-5
        assert torch.equal(img_caa['keys'], torch.tensor(labels))
        assert (hi.half().float() -
                img_caa['attn_highres'].float()).abs().max() < 1e-3


def test_box_mask_single_map_matches_stored_boxes(clip_es_parity_dir):
    caa = _load(clip_es_parity_dir / 'caa.pt')
    grad = _load(clip_es_parity_dir / 'gradcam.pt')
    thr = float(caa['box_threshold'])
    for img_caa, img_g in zip(caa['images'], grad['images']):
        for pl, plg in zip(img_caa['per_label'], img_g['per_label']):
            cam = plg['grayscale_cam']
            h, w = cam.shape
            ref = torch.zeros(h, w)
            for x0, y0, x1, y1 in pl['boxes'].tolist():
                ref[y0:y1, x0:x1] = 1
            assert torch.equal(box_masks_from_maps(cam, thr), ref)


def test_crf_matches_official(clip_es_parity_dir):
    crf_fx = _load(clip_es_parity_dir / 'crf.pt')
    caa = _load(clip_es_parity_dir / 'caa.pt')
    inputs = _load(clip_es_parity_dir / 'inputs.pt')
    crf = DenseCRF(
        **crf_fx['params'],
        image_mode='clip_es',
        mean_bgr=crf_fx['mean_bgr'],
        wrap_uint8=True,
        unary_dtype='float16',
        confidence_threshold=crf_fx['confidence_threshold'],
        ignore_index=crf_fx['ignore_index'])
    for i, im in enumerate(crf_fx['images']):
        rgb = inputs['images_rgb_uint8'][i]
        assert np.array_equal(
            crf.prepare_image(rgb), im['image_bgr_uint8'].numpy())
        prob = clip_es_prob(caa['images'][i]['attn_highres'],
                            crf_fx['bg_power'])
        assert np.array_equal(prob, im['prob'].numpy())
        c = prob.shape[0]
        assert np.array_equal(
            crf.unary(im['prob']), im['unary'].float().numpy().reshape(c, -1))
        q = crf.inference_single(
            im['image_bgr_uint8'].numpy(), im['prob'], prepared=True)
        assert np.array_equal(q, im['Q'].numpy())
        labels, raw, conf = crf.predict([rgb], [im['prob']],
                                        [im['keys_padded']])
        assert torch.equal(conf[0], im['confidence'])
        assert torch.equal(raw[0].to(torch.uint8), im['label'])
        assert torch.equal(labels[0].to(torch.uint8), im['pseudo_mask'])

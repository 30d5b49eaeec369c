"""HigherPose's decoding end to end on the real COCO and CrowdPose excerpts.

Ground-truth people are turned into the head's raw outputs (Gaussian
heatmaps at 1/4 and 1/2 from the training codec, one tag value per person at
1/4), fed through the head's own test path (multi-resolution aggregation,
flip test, resizing to the input, associative-embedding grouping), mapped
back to the image by the estimator and scored by MMPose's CocoMetric. A
correct pipeline groups every person and scores AP 1.0; a biased coordinate
convention, a flip that swaps the wrong channels or a grouping bug does not.
"""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpose.registry import DATASETS, KEYPOINT_CODECS, METRICS, MODELS

from conftest import DATA, REPO

CONFIGS = {
    'coco': ('ae_higherpose-w32_1xb12-300e_coco-512x512.py', 'coco',
             'test_coco.json', 'coco/AP'),
    'crowdpose': ('ae_higherpose-w32_1xb12-300e_crowdpose-512x512.py',
                  'crowdpose', 'test_crowdpose.json', 'crowdpose/AP'),
}


def excerpt_config(name: str) -> Config:
    config, folder, ann_file, _ = CONFIGS[name]
    cfg = Config.fromfile(REPO / 'configs/higherpose' / config)
    data_root = DATA / folder
    cfg.test_dataloader.dataset.update(
        data_root=str(data_root), ann_file=ann_file, data_prefix=dict(img=''))
    cfg.test_evaluator.ann_file = str(data_root / ann_file)
    cfg.model.backbone.init_cfg = None
    return cfg


def tag_maps(keypoints: np.ndarray, visible: np.ndarray,
             size: tuple) -> np.ndarray:
    """``(K, H, W)`` tags: every pixel of channel k carries ``n + 1`` of the
    person n whose k-th keypoint is nearest (tags are read at heatmap peaks,
    which lie near keypoints, so this is what a perfect tag map reads)."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width]
    tags = np.zeros((keypoints.shape[1], height, width), np.float32)
    for k in range(keypoints.shape[1]):
        people = np.flatnonzero(visible[:, k] > 0)
        if people.size == 0:
            continue
        distance = ((xs[None] - keypoints[people, k, 0, None, None])**2 +
                    (ys[None] - keypoints[people, k, 1, None, None])**2)
        tags[k] = people[distance.argmin(axis=0)] + 1
    return tags


def ground_truth_outputs(cfg, data_sample):
    """The head's raw outputs (1/4 heatmaps, 1/4 tags, 1/2 heatmaps) that
    encode the sample's annotated people exactly, in its input space."""
    meta = data_sample.metainfo
    width, height = meta['input_size']
    center, scale = meta['input_center'], meta['input_scale']
    gt = data_sample.gt_instances
    keypoints = ((gt.keypoints - center + 0.5 * scale) / scale *
                 np.array([width, height]))
    visible = gt.keypoints_visible
    codec = KEYPOINT_CODECS.build(
        dict(
            cfg.codec,
            input_size=(width, height),
            heatmap_size=(width // 4, height // 4),
            higher_heatmap_sizes=[(width // 2, height // 2)]))
    quarter, half = codec.encode(keypoints, visible)['heatmaps']
    tags = tag_maps(keypoints / 4 - 0.5, visible, (width // 4, height // 4))
    return tuple(torch.from_numpy(a)[None] for a in (quarter, tags, half))


def mirrored(outputs, flip_indices):
    """What a left-right equivariant network gives for the flipped image."""
    return tuple(o[:, flip_indices].flip(-1) for o in outputs)


def evaluate_ground_truth(name, monkeypatch, perturb=None):
    cfg = excerpt_config(name)
    model = MODELS.build(cfg.model).eval()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    metric = METRICS.build(cfg.test_evaluator)
    metric.dataset_meta = dataset.metainfo
    # The head's layers are replaced by the ground truth: its feature
    # "tuples" carry the raw outputs.
    monkeypatch.setattr(model.head, 'forward_stages', lambda feats: feats[0])
    for index in range(len(dataset)):
        data_sample = dataset[index]['data_samples']
        outputs = ground_truth_outputs(cfg, data_sample)
        if perturb is not None:
            outputs = perturb(outputs)
        flip_indices = data_sample.metainfo['flip_indices']
        feats = [(outputs, ), (mirrored(outputs, flip_indices), )]
        with torch.no_grad():
            preds = model.head.predict(
                feats, [data_sample], test_cfg=model.test_cfg)
        result = model.add_pred_to_datasample(preds, None, [data_sample])
        metric.process([], [r.to_dict() for r in result])
    return metric.evaluate(len(dataset)), dataset


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_ground_truth_outputs_group_into_every_person_with_ap_one(
        name, monkeypatch):
    metrics, dataset = evaluate_ground_truth(name, monkeypatch)
    key = CONFIGS[name][3]
    # Exact 1.0 up to float printing: OKS of every person must pass the
    # 0.95 threshold, which needs unbiased sub-pixel decoding.
    assert metrics[key] == pytest.approx(1.0, abs=1e-6), metrics
    assert metrics[key.replace('AP', 'AR')] == pytest.approx(1.0, abs=1e-6)


def test_swapped_tags_lower_ap(monkeypatch):
    """The same check sees grouping errors: giving the left-side keypoints
    of each person the tag of the next person splits people apart."""

    def swap_left_tags(outputs):
        quarter, tags, half = outputs
        tags = tags.clone()
        tags[:, 1::2] = tags[:, 1::2] % tags.max() + 1
        return quarter, tags, half

    metrics, _ = evaluate_ground_truth('coco', monkeypatch, swap_left_tags)
    assert metrics['coco/AP'] < 0.9

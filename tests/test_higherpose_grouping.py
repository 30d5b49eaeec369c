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
from mmpose.codecs.associative_embedding import _group_keypoints_by_tags
from mmpose.registry import DATASETS, KEYPOINT_CODECS, METRICS, MODELS

from sspose_mm.codecs.higherpose_ae import group_keypoints_by_tags
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


def crowd_candidates(num_keypoints: int, people: int = 30):
    """Top-k candidates ``(K, M)``, ``(K, M, 1)``, ``(K, M, 2)`` of a crowd
    of 2 x ``people``: the first keypoint type in the grouping order shows
    ``people`` people (tags 1, 3, 5, ...), the second as many others (tags
    from 101, further than the tag threshold from all), the third the
    second's people again with tags 0.3 off theirs (within the threshold).
    Other types have no candidate above the threshold."""
    vals = np.zeros((num_keypoints, people), np.float32)
    tags = np.zeros((num_keypoints, people, 1), np.float32)
    locs = np.zeros((num_keypoints, people, 2), np.int64)
    person = np.arange(people)
    for k, first_tag in ((0, 1.), (1, 101.), (2, 101.3)):
        vals[k] = 0.9 - 0.01 * person
        tags[k, :, 0] = first_tag + 2 * person
        locs[k] = np.stack([10 * person + k, np.full(people, 7 * k)], -1)
    return vals, tags, locs


def test_grouping_caps_the_matching_at_30_and_keeps_every_group():
    """HigherHRNet's rule (MAX_NUM_PEOPLE 30): the third type's candidates
    are matched against the first 30 groups only (the first type's
    people, too far), so they start 30 groups of their own; every group is
    returned. MMPose's rule (``decode_max_instances=30``) would match them
    to the second type's groups and return the first 30 groups only."""
    cfg = Config.fromfile(REPO / 'configs/higherpose' / CONFIGS['coco'][0])
    codec = KEYPOINT_CODECS.build(
        dict(cfg.model.head.decoder, decode_keypoint_order=list(range(17))))
    vals, tags, locs = crowd_candidates(17)
    groups, = codec._group_keypoints(vals[None], tags[None], locs[None])
    assert groups.shape == (90, 17, 3)
    for k in range(3):
        block = groups[30 * k:30 * (k + 1)]
        # Each block holds one type's candidates, in candidate order.
        assert np.array_equal(block[:, k, :2], locs[k])
        assert np.array_equal(block[:, k, 2], vals[k])
        others = np.delete(block, k, axis=1)
        assert not others.any()


def test_grouping_below_the_cap_is_mmposes():
    """Under the cap the rule is MMPose's (the same HigherHRNet matching):
    random crowds of up to 12 people, each seen by most keypoint types with
    a noisy tag, among 30 candidates per type (the rest below the score
    threshold), group identically."""
    rng = np.random.default_rng(0)
    order = [0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16]
    for _ in range(20):
        people = rng.integers(1, 13)
        person_tags = rng.permutation(people) * 1.5
        tags = rng.normal(0, 0.3, (17, 30, 1)).astype(np.float32)
        tags[:, :people, 0] += person_tags
        vals = rng.uniform(0, 0.1, (17, 30)).astype(np.float32)
        vals[:, :people] = rng.uniform(0, 1, (17, people))
        locs = rng.integers(0, 128, (17, 30, 2))
        ours = group_keypoints_by_tags(
            vals,
            tags,
            locs,
            order,
            val_thr=0.1,
            tag_thr=1.0,
            max_matched_groups=30)
        mmpose = _group_keypoints_by_tags(
            vals, tags, locs, order, val_thr=0.1, tag_thr=1.0)
        assert len(mmpose) <= 30
        np.testing.assert_array_equal(ours, mmpose)

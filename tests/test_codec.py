"""TransPoseHeatmap: the original's target and decoding; the vectorised
target generation of TransPose's and HigherPose's codecs against the
per-keypoint loops it replaces; TransPoseAffine's crop."""
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from mmpose.apis import init_model
from mmpose.codecs import AssociativeEmbedding
from mmpose.codecs.utils import (generate_gaussian_heatmaps,
                                 generate_udp_gaussian_heatmaps)

from sspose_mm.codecs import (MultiResolutionAssociativeEmbedding,
                              TransPoseHeatmap,
                              generate_full_gaussian_heatmaps)
from sspose_mm.codecs.higherpose_ae import generate_gaussian_heatmaps_at_once
from sspose_mm.datasets.transforms import TransPoseAffine
from conftest import GOLDEN, REPO

CODEC = dict(
    input_size=(192, 256), heatmap_size=(48, 64), sigma=2, blur_kernel_size=11)


def test_encode_is_an_untruncated_gaussian_at_the_udp_position():
    codec = TransPoseHeatmap(**CODEC)
    keypoint = np.array([[[100.3, 60.7]]], dtype=np.float32)
    encoded = codec.encode(keypoint, np.ones((1, 1), dtype=np.float32))
    heatmap = encoded['heatmaps'][0]
    # UDP scaling: input (w - 1) maps to heatmap (W - 1).
    mu = keypoint[0, 0] * np.array([47 / 191, 63 / 255])
    ys, xs = np.mgrid[0:64, 0:48]
    expected = np.exp(-((xs - mu[0])**2 + (ys - mu[1])**2) / 8)
    np.testing.assert_allclose(heatmap, expected, rtol=1e-5, atol=1e-7)
    # 10 pixels (5 sigma) away the original still has a (tiny) value,
    # where MMPose's UDPHeatmap is cut to exactly 0 beyond 3 sigma.
    assert heatmap[int(mu[1]), int(mu[0]) + 10] > 0
    assert encoded['keypoint_weights'].tolist() == [[1.0]]


def test_encode_weights_follow_visibility_and_map_bounds():
    codec = TransPoseHeatmap(**CODEC)
    keypoints = np.array([[[50, 50], [50, 50], [-40, 50], [-20, 50]]],
                         dtype=np.float32)
    visible = np.array([[1, 0, 1, 1]], dtype=np.float32)
    encoded = codec.encode(keypoints, visible)
    # Invisible -> 0; 3-sigma box entirely left of the map -> 0; partly
    # inside (x_hm = -4.9, box reaches +2) -> kept.
    assert encoded['keypoint_weights'].tolist() == [[1, 0, 0, 1]]
    assert not encoded['heatmaps'][1].any()
    assert not encoded['heatmaps'][2].any()
    assert encoded['heatmaps'][3].max() > 0


def test_encode_decode_round_trip_recovers_the_gaussian_centre():
    """DARK recovers the centre of a clean Gaussian almost exactly (0.005
    heatmap px leaves room for the discrete blur kernel). Compared in heatmap
    pixels: like MMPose's UDPHeatmap, decode returns ``x_hm / (W - 1) * w``,
    which TopdownPoseEstimator maps to the image with the box size, so the
    image -> heatmap -> image chain is exact while ``decode(encode(x))`` is
    ``x * w / (w - 1)``."""
    codec = TransPoseHeatmap(**CODEC)
    rng = np.random.default_rng(0)
    keypoints = rng.uniform([20, 20], [172, 236],
                            (1, 17, 2)).astype(np.float32)
    encoded = codec.encode(keypoints, np.ones((1, 17), dtype=np.float32))
    decoded, scores = codec.decode(encoded['heatmaps'])
    centres = keypoints * [47 / 191, 63 / 255]
    np.testing.assert_allclose(
        decoded * [47 / 192, 63 / 256], centres, atol=5e-3)
    assert scores.shape == (1, 17) and (scores > 0.9).all()


def test_decode_reproduces_official_dark_on_golden_heatmaps():
    """On the official post-processing golden: our decode, mapped to heatmap
    pixels, equals the official DARK result mapped back from the image with
    the official aligned-corner similarity (README of the golden files).
    Tolerance 1e-3 heatmap px: float32 round-off of the golden's
    image-space numbers (up to ~500 px) through the inverse map."""
    golden = np.load(GOLDEN / 'transpose' / 'decode_seed0.npz')
    codec = TransPoseHeatmap(**CODEC)
    W, H = 48, 64
    for i, heatmaps in enumerate(golden['heatmaps']):
        keypoints, scores = codec.decode(heatmaps)
        ours_hm = keypoints[0] * [(W - 1) / 192, (H - 1) / 256]
        f = (golden['bbox_size_px'][i, 0] - 1) / (W - 1)
        official_hm = ((golden['preds'][i] - golden['center'][i]) / f +
                       [(W - 1) / 2, (H - 1) / 2])
        np.testing.assert_allclose(ours_hm, official_hm, atol=1e-3)
        np.testing.assert_array_equal(scores[0], golden['maxvals'][i, :, 0])


def full_gaussians_one_by_one(heatmap_size, keypoints, keypoints_visible,
                              sigma):
    """generate_full_gaussian_heatmaps as it was written first, one keypoint
    at a time (the reference of the vectorised one)."""
    W, H = heatmap_size
    K = keypoints.shape[1]
    heatmaps = np.zeros((K, H, W), dtype=np.float32)
    weights = keypoints_visible.astype(np.float32, copy=True)
    xs = np.arange(W, dtype=np.float32)
    ys = np.arange(H, dtype=np.float32)[:, None]
    radius = 3 * sigma
    for k in range(K):
        if weights[0, k] <= 0.5:
            continue
        mu_x, mu_y = keypoints[0, k]
        left, top = int(mu_x - radius), int(mu_y - radius)
        right, bottom = int(mu_x + radius + 1), int(mu_y + radius + 1)
        if left >= W or top >= H or right < 0 or bottom < 0:
            weights[0, k] = 0
            continue
        heatmaps[k] = np.exp(-((xs - mu_x)**2 + (ys - mu_y)**2) /
                             (2 * sigma**2))
    return heatmaps, weights


def random_keypoints(rng, num_instances, size, dtype):
    """``(N, 17, 2)`` keypoints in and around a map of ``size`` (W, H): up
    to 25 pixels beyond each border (boxes wholly and partly outside), some
    on whole and half pixels (where truncation and rounding turn), and
    visibilities 0, 0.3, 0.5 (the thresholds), 1 and 2."""
    keypoints = rng.uniform(-25,
                            np.array(size) + 25,
                            (num_instances, 17, 2)).astype(dtype)
    keypoints[:, :4] = np.round(keypoints[:, :4] * 2) / 2
    visible = rng.choice([0., 0.3, 0.5, 1., 2.], (num_instances, 17))
    return keypoints, visible.astype(np.float32)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_full_gaussians_equal_the_one_by_one_computation(dtype):
    """Bit for bit: the same float32 operations on every pixel."""
    rng = np.random.default_rng(0)
    for _ in range(100):
        keypoints, visible = random_keypoints(rng, 1, (48, 64), dtype)
        sigma = rng.choice([2, 2., 1.5, 3.])
        expected = full_gaussians_one_by_one((48, 64), keypoints, visible,
                                             sigma)
        result = generate_full_gaussian_heatmaps((48, 64), keypoints, visible,
                                                 sigma)
        for got, want in zip(result, expected):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('use_udp, mmpose_loop',
                         [(False, generate_gaussian_heatmaps),
                          (True, generate_udp_gaussian_heatmaps)])
def test_ae_heatmaps_at_once_equal_mmpose_loops(use_udp, mmpose_loop):
    """Bit for bit MMPose's per-keypoint functions, with 0 to 12 people,
    overlapping Gaussians, non-integer radii and either float type."""
    rng = np.random.default_rng(1)
    for _ in range(60):
        size = tuple(rng.choice([16, 32, 128], 2))
        keypoints, visible = random_keypoints(
            rng, rng.integers(0, 13), size,
            rng.choice([np.float32, np.float64]))
        sigma = rng.choice([1., 1.5, 2.])
        expected = mmpose_loop(size, keypoints, visible, sigma)
        result = generate_gaussian_heatmaps_at_once(size, keypoints, visible,
                                                    sigma, use_udp)
        for got, want in zip(result, expected):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_ae_keypoint_indices_equal_mmpose_loop():
    rng = np.random.default_rng(2)
    ours = MultiResolutionAssociativeEmbedding((128, 96), (32, 24), sigma=2)
    stock = AssociativeEmbedding((128, 96), (32, 24),
                                 sigma=2,
                                 decode_keypoint_order=[])
    for num_instances in (0, 1, 7):
        keypoints, visible = random_keypoints(rng, num_instances, (32, 24),
                                              np.float32)
        expected = stock._encode_keypoint_indices((32, 24), keypoints, visible)
        result = ours._encode_keypoint_indices((32, 24), keypoints, visible)
        assert result.dtype == expected.dtype
        np.testing.assert_array_equal(result, expected)


def test_encode_rejects_several_instances():
    with pytest.raises(ValueError, match='one instance'):
        TransPoseHeatmap(**CODEC).encode(np.zeros((2, 17, 2)))


def test_config_crop_and_estimator_reproduce_official_image_coordinates():
    """The decode golden end to end in MMPose's way: the R-A3 config's own
    test-time crop (TransPoseAffine, given the golden's aspect-fixed boxes),
    the head's decoder, and TopdownPoseEstimator's mapping back to the
    image give the official predictions. Tolerance 1e-3 image px: float32
    round-off of coordinates up to ~500 px (the golden README measured the
    official closed form against these files to 3e-5 px); scores are
    copied maxima, so exact."""
    golden = np.load(GOLDEN / 'transpose' / 'decode_seed0.npz')
    model = init_model(
        str(REPO / 'configs/transpose/'
            'td-hm_transpose-r-a3_1xb28-230e_coco-256x192.py'),
        None,
        device='cpu')
    # Boxes come from the golden, so the steps that make them are skipped.
    crop_and_pack = Compose([
        step for step in model.cfg.test_dataloader.dataset.pipeline
        if step['type'] not in ('LoadImageOrSkip', 'GetBBoxCenterScale')
    ])
    assert crop_and_pack.transforms[0].__class__.__name__ == 'TransPoseAffine'
    samples = []
    for center, size in zip(golden['center'], golden['bbox_size_px']):
        packed = crop_and_pack(
            dict(
                img=np.zeros((8, 8, 3), np.uint8),
                img_shape=(8, 8),
                bbox=np.zeros((1, 4), np.float32),
                bbox_score=np.ones(1, np.float32),
                bbox_center=center[None].astype(np.float32),
                bbox_scale=size[None].astype(np.float32)))
        samples.append(packed['data_samples'])
    predictions = model.head.decode(torch.from_numpy(golden['heatmaps']))
    samples = model.add_pred_to_datasample(predictions, None, samples)
    for i, sample in enumerate(samples):
        np.testing.assert_allclose(
            sample.pred_instances.keypoints[0], golden['preds'][i], atol=1e-3)
        np.testing.assert_array_equal(sample.pred_instances.keypoint_scores[0],
                                      golden['maxvals'][i, :, 0])


def test_crop_is_the_official_width_set_similarity():
    """TransPoseAffine's warp: box centre onto ((w-1)/2, (h-1)/2) and S_w - 1
    box pixels onto w - 1 input pixels on both axes (the official
    aligned-corner crop), while input_scale carries the official decode's
    heatmap-derived height."""
    affine = TransPoseAffine(input_size=(192, 256), heatmap_size=(48, 64))
    center, width = np.array([150.5, 200.25], np.float32), 180.
    points = np.array([[[10., 20.], [150.5, 200.25], [260., 330.]]],
                      np.float32)
    results = affine.transform(
        dict(
            img=np.zeros((400, 300, 3), np.uint8),
            bbox_center=center[None],
            bbox_scale=np.array([[width, 200.]], np.float32),
            keypoints=points,
            keypoints_visible=np.ones((1, 3), np.float32)))
    # The aspect fix made the box 180 x 240; the crop is
    # x_in = (x - c) * (w - 1) / (S_w - 1) + (w - 1) / 2 on both axes.
    expected = ((points[0] - center) * (192 - 1) / (width - 1) +
                [(192 - 1) / 2, (256 - 1) / 2])
    # float32 warp matrix times coordinates of a few hundred pixels.
    np.testing.assert_allclose(
        results['transformed_keypoints'][0], expected, atol=1e-3)
    assert results['img'].shape == (256, 192, 3)
    np.testing.assert_allclose(results['bbox_scale'], [[180, 240]])
    np.testing.assert_allclose(
        results['input_scale'], [179, 179 * 63 / 47], rtol=1e-6)


@pytest.mark.parametrize('flip', [(slice(None), slice(None, None, -1)),
                                  (slice(None, None, -1), slice(None)),
                                  (slice(None, None, -1), ) * 2])
def test_crop_of_a_mirrored_view_equals_that_of_its_copy(flip):
    """RandomFlip mirrors as a view; the crop copies it its own (faster)
    way, to the same pixels."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    affine = TransPoseAffine(input_size=(48, 64), heatmap_size=(12, 16))
    crops = []
    for img in (image[flip], np.ascontiguousarray(image[flip])):
        results = affine.transform(
            dict(
                img=img,
                bbox_center=np.array([[40.3, 61.7]], np.float32),
                bbox_scale=np.array([[70., 90.]], np.float32),
                bbox_rotation=np.array([25.], np.float32)))
        crops.append(results['img'])
    np.testing.assert_array_equal(crops[0], crops[1])

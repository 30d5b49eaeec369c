"""The released code's test protocol (every image in one S x S input,
``BottomupSquareResize``): the image is warped as the released code warps
it, and keypoints decoded in the input come back to the right place in
the original, non-square image."""
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.registry import DATASETS, KEYPOINT_CODECS, MODELS, TRANSFORMS

from conftest import REPO
from test_higherpose_grouping import mirrored, tag_maps

SQUARE = {
    name:
    REPO / 'configs/higherpose' /
    f'ae_higherpose-w32-test-square_1xb12-300e_{name}-512x512.py'
    for name in ('coco', 'crowdpose')
}
# (w, h), even so that the released code's integer centre int(w / 2 + 0.5)
# is MMPose's w / 2.
LANDSCAPE, PORTRAIT = (640, 480), (360, 600)


def released_mapping(points: np.ndarray, image_size, size: int):
    """The released code's image -> input map (``get_multi_scale_size`` and
    ``get_affine_transform``): scale by ``S / w`` about the image centre,
    which lands on the input's centre."""
    w, h = image_size
    return ((points - np.array([w / 2, h / 2])) * size / w +
            size / 2).astype(np.float32)


def blob_image(image_size, centre, sigma: float = 3.):
    w, h = image_size
    ys, xs = np.mgrid[0:h, 0:w]
    blob = np.exp(-((xs - centre[0])**2 + (ys - centre[1])**2) /
                  (2 * sigma**2))
    return np.repeat((255 * blob)[..., None], 3, axis=2).astype(np.float32)


@pytest.mark.parametrize('image_size', [LANDSCAPE, PORTRAIT])
def test_square_resize_warps_the_image_as_the_released_code(image_size):
    w, h = image_size
    # A point inside the rows a portrait image keeps: (h - w) / 2 are cut
    # above and below.
    centre = np.array([0.3 * w, h / 2 - 0.4 * min(w, h)])
    resize = TRANSFORMS.build(
        dict(type='BottomupSquareResize', input_size=(512, 512)))
    results = resize(
        dict(img=blob_image(image_size, centre), ori_shape=(h, w)))
    assert results['img'].shape == (512, 512, 3)
    assert results['input_size'] == (512, 512)
    image = results['img'][..., 0].astype(np.float64)
    ys, xs = np.mgrid[0:512, 0:512]
    found = np.array([(xs * image).sum(), (ys * image).sum()]) / image.sum()
    # Bilinear resampling of a Gaussian of sigma 2.4 input pixels moves its
    # centroid by far less than 0.1 px; a centre at (w - 1) / 2 instead of
    # w / 2 would be 0.4 px off, a wrong scale tens of pixels.
    np.testing.assert_allclose(
        found, released_mapping(centre, image_size, 512), atol=0.1)


@pytest.mark.parametrize('option',
                         [dict(resize_mode='expand'),
                          dict(use_udp=True)])
def test_square_resize_refuses_the_modes_it_does_not_have(option):
    # The released resize has one mode and one warp: an option of the
    # parent that would change either must not be accepted and ignored.
    with pytest.raises(TypeError, match=next(iter(option))):
        TRANSFORMS.build(
            dict(type='BottomupSquareResize', input_size=(512, 512), **option))


def test_square_configs_change_only_the_test_resize():
    for name, path in SQUARE.items():
        square = Config.fromfile(path).to_dict()
        base = Config.fromfile(str(path).replace('-test-square', '')).to_dict()
        for loader in ('val_dataloader', 'test_dataloader'):
            pipeline = square[loader]['dataset'].pop('pipeline')
            base_pipeline = base[loader]['dataset'].pop('pipeline')
            assert pipeline[1] == dict(
                type='BottomupSquareResize',
                input_size=base_pipeline[1]['input_size'],
                size_factor=base_pipeline[1]['size_factor'])
            assert pipeline[:1] + pipeline[2:] == (
                base_pipeline[:1] + base_pipeline[2:])
        for key in ('val_pipeline', 'test_pipeline'):
            square.pop(key, None)
            base.pop(key, None)
        assert square == base, name


@pytest.mark.parametrize('image_size', [LANDSCAPE, PORTRAIT])
def test_keypoints_round_trip_to_the_non_square_image(image_size, monkeypatch):
    """Known keypoints of three people in a non-square image -> the
    released input mapping -> the codec's heatmaps and tags -> the head's
    test path (flip, aggregation, resizing, grouping) -> the estimator's
    back-transform: the same keypoints."""
    cfg = Config.fromfile(SQUARE['coco'])
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model).eval()
    # The head's layers are replaced by the encoded keypoints.
    monkeypatch.setattr(model.head, 'forward_stages', lambda feats: feats[0])
    metainfo = parse_pose_metainfo(DATASETS.get('CocoDataset').METAINFO)

    w, h = image_size
    rng = np.random.default_rng(0)
    # Inside the window the square input shows of a portrait image.
    top = max(0, (h - w) / 2)
    keypoints = rng.uniform([0.05 * w, top + 0.05 * w],
                            [0.95 * w, h - top - 0.05 * w], (3, 17, 2))
    visible = np.ones((3, 17), np.float32)

    pipeline = Compose(cfg.test_dataloader.dataset.pipeline[1:])
    packed = pipeline(
        dict(
            img=np.zeros((h, w, 3), np.uint8),
            ori_shape=(h, w),
            img_shape=(h, w),
            flip_indices=metainfo['flip_indices']))
    data_sample = packed['data_samples']
    assert packed['inputs'].shape == (3, 512, 512)

    # Encoded from the released mapping, not from the sample's meta.
    inputs = released_mapping(keypoints, image_size, 512)
    codec = KEYPOINT_CODECS.build(cfg.codec)
    quarter, half = codec.encode(inputs, visible)['heatmaps']
    tags = tag_maps(inputs / 4 - 0.5, visible, (128, 128))
    outputs = tuple(torch.from_numpy(a)[None] for a in (quarter, tags, half))
    feats = [(outputs, ), (mirrored(outputs, metainfo['flip_indices']), )]
    with torch.no_grad():
        preds = model.head.predict(
            feats, [data_sample], test_cfg=model.test_cfg)
    result, = model.add_pred_to_datasample(preds, None, [data_sample])
    predicted = result.pred_instances.keypoints
    assert predicted.shape == (3, 17, 2)
    # People come out in grouping order: match by the first keypoint.
    order = [
        np.abs(predicted[:, 0] - p[0]).sum(-1).argmin() for p in keypoints
    ]
    assert sorted(order) == [0, 1, 2]
    # Targets sit at the 1/4-resolution pixel that holds the keypoint,
    # decoded at its centre +-0.25 px: at most 2.25 input pixels off per
    # axis, i.e. 2.25 * w / 512 image pixels (0.5 px slack for the
    # resizing of the heatmaps). A wrong back-transform is off by up to
    # (h - w) / 2 image pixels.
    tolerance = 2.75 * w / 512
    np.testing.assert_array_less(
        np.abs(predicted[order] - keypoints), tolerance)

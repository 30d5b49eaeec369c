"""The pretraining crop is the official one: torchvision's
``RandomResizedCrop`` box (area 0.2-1, aspect ratio log-uniform, 10 tries,
then the central crop) from torch's random generator, resized bicubically
with antialiasing, as PIL resized it in the official pipeline.

The boxes are checked against a computation of torchvision's documented
sampling written here (the same draws from the same seed): float images
against ``F.interpolate(mode='bicubic', antialias=True)`` of that box (the
resize the transform runs, so only the box can differ), uint8 images
against PIL's bicubic resize of it (what the official pipeline ran).
"""
import math
from typing import Tuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpose.registry import TRANSFORMS
from PIL import Image

from conftest import REPO


def reference_box(height: int, width: int, scale: Tuple[float, float],
                  ratio: Tuple[float, float]) -> Tuple[int, int, int, int]:
    """``(top, left, h, w)`` and whether it is the fallback, as torchvision
    documents it: per try, an area fraction uniform in ``scale`` then a
    ``w / h`` log-uniform in ``ratio`` (bounds in float32, as it computes
    them); the first box that fits gets a uniform top then left. After 10
    tries: the whole image cut to the ratio range, centred."""
    low, high = torch.log(torch.tensor(ratio)).tolist()
    for _ in range(10):
        area = height * width * torch.empty(1).uniform_(*scale).item()
        aspect = torch.exp(torch.empty(1).uniform_(low, high)).item()
        w = int(round(math.sqrt(area * aspect)))
        h = int(round(math.sqrt(area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = torch.randint(0, height - h + 1, (1, )).item()
            left = torch.randint(0, width - w + 1, (1, )).item()
            return (top, left, h, w), False
    w, h = width, height
    if width / height < min(ratio):
        h = int(round(width / min(ratio)))
    elif width / height > max(ratio):
        w = int(round(height * max(ratio)))
    return ((height - h) // 2, (width - w) // 2, h, w), True


def crop_of(size, **kwargs):
    return TRANSFORMS.build(
        dict(type='RandomResizedCrop', input_size=size, **kwargs))


# Image (H, W), scale range and how many of 20 seeds end in the fallback:
# a 1000x10 strip has no box of area >= 0.9 and w/h >= 3/4 (the tallest
# central box of w/h 3/4), nor 10x1000 (the widest); a 200x200 square at
# scale 1 fits only a w/h that rounds to 200x200 (about 2% of the draws,
# else the whole image); a 97x41 image fits large boxes of w/h >= 3/4
# only sometimes.
CASES = [((60, 80), (0.2, 1.0), 'never'), ((97, 41), (0.2, 1.0), 'sometimes'),
         ((1000, 10), (0.9, 1.0), 'always'),
         ((10, 1000), (0.9, 1.0), 'always'),
         ((200, 200), (1.0, 1.0), 'sometimes')]


@pytest.mark.parametrize('shape,scale,fallbacks', CASES)
def test_boxes_are_torchvisions_and_resized_with_antialiasing(
        shape, scale, fallbacks):
    crop = crop_of((12, 16), scale=scale)
    image = np.random.default_rng(0).random((*shape, 3), dtype=np.float32)
    planes = torch.from_numpy(image).permute(2, 0, 1)[None]
    used = 0
    for seed in range(20):
        torch.manual_seed(seed)
        out = crop.transform(dict(img=image.copy()))
        torch.manual_seed(seed)
        (top, left, h,
         w), used_fallback = reference_box(*shape, scale, (3 / 4, 4 / 3))
        used += used_fallback
        expected = F.interpolate(
            planes[..., top:top + h, left:left + w], (16, 12),
            mode='bicubic',
            antialias=True,
            align_corners=False)[0].permute(1, 2, 0).numpy()
        assert out['img_shape'] == (16, 12)
        # Noise in [0, 1): a box one pixel off changes pixels by ~0.1;
        # the same box differs by float32 round-off only.
        np.testing.assert_allclose(out['img'], expected, atol=1e-5)
    assert {0: 'never', 20: 'always'}.get(used, 'sometimes') == fallbacks


def test_uint8_crops_equal_pils_bicubic_resize():
    """The official pipeline resized PIL images (bicubic, antialiased):
    a 300x500 image cropped to at most 4x downscaled 64x48 outputs."""
    crop = crop_of((48, 64))
    image = np.random.default_rng(1).integers(
        0, 256, (300, 500, 3), dtype=np.uint8)
    differing = []
    for seed in range(5):
        torch.manual_seed(seed)
        out = crop.transform(dict(img=image.copy()))['img']
        torch.manual_seed(seed)
        (top, left, h, w), _ = reference_box(300, 500, (0.2, 1.0),
                                             (3 / 4, 4 / 3))
        pil = np.asarray(
            Image.fromarray(image).crop((left, top, left + w, top + h)).resize(
                (48, 64), Image.BICUBIC))
        difference = np.abs(out.astype(int) - pil.astype(int))
        # Both round to 8 bits, in their own order of operations: measured
        # 1 level on at most 0.45% of the pixels; torchvision's v1 resize
        # (through float) differs on 11%, cv2's INTER_CUBIC (no
        # antialiasing) by up to 150 levels.
        assert difference.max() <= 1
        differing.append((difference > 0).mean())
    assert np.mean(differing) < 0.01, differing


def test_grayscale_images_and_unknown_interpolation():
    crop = crop_of((12, 16))
    gray = crop.transform(dict(img=np.zeros((40, 30), np.uint8)))['img']
    assert gray.shape == (16, 12) and gray.dtype == np.uint8
    bad = dict(input_size=(12, 16), interpolation='area')
    with pytest.raises(ValueError, match='interpolation must be one of'):
        TRANSFORMS.build(dict(type='RandomResizedCrop', **bad))


@pytest.mark.parametrize('config', [
    'mae_sspose-b_8xb64-800e_coco-256x192.py',
    'mae_sspose-t_1xb16-20e_synthetic-128x96.py',
    'mae_sspose-convvit-b_24xb128-800e_in1k-224.py'
])
def test_pretraining_crops_are_not_stretched_on_average(config):
    """Each pretraining config's crop: area 0.2-1 and the official ratio
    range (3/4, 4/3) taken around the output's w/h (torchvision's ratio is
    the crop's own w/h)."""
    cfg = Config.fromfile(REPO / 'configs/sspose' / config)
    (crop, ) = (
        t for t in cfg.train_dataloader.dataset.pipeline
        if t['type'] == 'RandomResizedCrop')
    w, h = crop['input_size']
    low, high = crop['ratio']
    assert tuple(crop['scale']) == (0.2, 1.0)
    assert crop['interpolation'] == 'bicubic'
    assert low * high == pytest.approx((w / h)**2)
    assert high / low == pytest.approx(16 / 9)

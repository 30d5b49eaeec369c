"""ClippedRandomBBoxTransform: the originals' random laws (HRNet, DarkPose,
TransPose, MMPose 0.x), which MMPose 1.x's truncated normals differ from.

Each expected share below follows from the law alone: a normal clipped at
k sigma puts 2 (1 - Phi(k)) of its mass on the bounds (k = 1: 0.3173,
k = 2: 0.0455); a truncated normal (MMPose 1.x) puts none there. With
200,000 draws the standard error of a share p is sqrt(p (1 - p) / n) <=
0.0011, so the 0.005 tolerances are over 4 standard errors.
"""
import numpy as np
from scipy.stats import norm

from sspose_mm.datasets.transforms import ClippedRandomBBoxTransform

DRAWS = 200_000


def draw(**kwargs):
    np.random.seed(0)
    transform = ClippedRandomBBoxTransform(**kwargs)
    return transform._get_transform_params(DRAWS)


def test_scale_is_a_normal_clipped_at_one_sigma():
    _, scale, _ = draw(scale_factor=(0.65, 1.35))  # TransPose's 0.35 sigma
    scale = scale[:, 0]
    assert scale.min() == np.float32(0.65) and scale.max() == np.float32(1.35)
    at_bounds = np.mean((scale == np.float32(0.65))
                        | (scale == np.float32(1.35)))
    assert abs(at_bounds - 2 * norm.sf(1)) < 0.005
    inside = scale[(scale > 0.65) & (scale < 1.35)]
    # The unclipped part keeps the normal's shape: half of it lies within
    # q sigma of the centre, where Phi(q) - 1/2 = (Phi(1) - 1/2) / 2.
    half_width = 0.35 * norm.ppf(0.5 + (norm.cdf(1) - 0.5) / 2)
    assert abs(np.mean(np.abs(inside - 1) < half_width) - 0.5) < 0.005


def test_angle_is_a_normal_clipped_at_two_sigma_with_its_probability():
    _, _, angle = draw(rotate_sigma=45, rotate_factor=90, rotate_prob=0.6)
    rotated = angle[angle != 0]
    assert abs(len(rotated) / DRAWS - 0.6) < 0.005
    assert np.abs(angle).max() == 90
    assert abs(np.mean(np.abs(rotated) == 90) - 2 * norm.sf(2)) < 0.005


def test_shift_is_uniform_in_the_factor():
    offset, _, _ = draw(shift_factor=0.16, shift_prob=1.0)
    assert np.abs(offset).max() <= np.float32(0.16)
    # Uniform: half the draws beyond half the factor, variance f^2 / 3
    # (a one-sigma truncated normal: 0.439 and 0.291 f^2).
    assert abs(np.mean(np.abs(offset) > 0.08) - 0.5) < 0.005
    assert abs(offset.var() / (0.16**2 / 3) - 1) < 0.02
    offset, _, _ = draw(shift_factor=0.16, shift_prob=0.3)
    assert abs(np.mean(np.any(offset != 0, axis=1)) - 0.3) < 0.005

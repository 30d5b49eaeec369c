from typing import Tuple

import numpy as np
from mmcv.transforms.utils import cache_randomness
from mmpose.datasets.transforms import RandomBBoxTransform
from mmpose.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ClippedRandomBBoxTransform(RandomBBoxTransform):
    """``RandomBBoxTransform`` with the random laws of HRNet, DarkPose,
    TransPose and MMPose 0.x (SHaRPose) instead of MMPose 1.x's normal
    truncated at one sigma (redrawn outside):

    - shift: uniform in ``[-shift_factor, shift_factor]`` box sizes per axis;
    - scale: ``clip(N(mu, sigma), min, max)``, ``mu``/``sigma`` the centre
      and half-width of ``scale_factor``: 31.7% of the draws sit at the
      bounds (TransPose: 0.65 / 1.35);
    - angle: ``clip(N(0, rotate_sigma), -rotate_factor, rotate_factor)``
      in degrees (TransPose: 45 clipped at 90, 4.6% of rotations at +-90).
    """

    def __init__(self,
                 shift_factor: float = 0.,
                 shift_prob: float = 0.,
                 scale_factor: Tuple[float, float] = (0.65, 1.35),
                 scale_prob: float = 1.0,
                 rotate_sigma: float = 45.,
                 rotate_factor: float = 90.,
                 rotate_prob: float = 0.6) -> None:
        super().__init__(
            shift_factor=shift_factor,
            shift_prob=shift_prob,
            scale_factor=scale_factor,
            scale_prob=scale_prob,
            rotate_factor=rotate_factor,
            rotate_prob=rotate_prob)
        self.rotate_sigma = rotate_sigma

    @cache_randomness
    def _get_transform_params(self, num_bboxes: int) -> Tuple:
        """Offsets (n, 2) in box sizes, scales (n, 1), angles (n,)."""
        offset = self.shift_factor * np.random.uniform(-1, 1, (num_bboxes, 2))
        offset = np.where(
            np.random.rand(num_bboxes, 1) < self.shift_prob, offset, 0.)
        scale_min, scale_max = self.scale_factor
        mu, sigma = (scale_max + scale_min) / 2, (scale_max - scale_min) / 2
        scale = np.clip(
            np.random.randn(num_bboxes, 1) * sigma + mu, scale_min, scale_max)
        scale = np.where(
            np.random.rand(num_bboxes, 1) < self.scale_prob, scale, 1.)
        rotate = np.clip(
            np.random.randn(num_bboxes) * self.rotate_sigma,
            -self.rotate_factor, self.rotate_factor)
        rotate = np.where(
            np.random.rand(num_bboxes) < self.rotate_prob, rotate, 0.)
        return (offset.astype(np.float32), scale.astype(np.float32),
                rotate.astype(np.float32))

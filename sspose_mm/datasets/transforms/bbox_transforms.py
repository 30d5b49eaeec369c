from typing import Tuple

import numpy as np
from mmpose.datasets.transforms import RandomBBoxTransform
from mmpose.registry import TRANSFORMS


@TRANSFORMS.register_module()
class ClippedRandomBBoxTransform(RandomBBoxTransform):
    """:class:`RandomBBoxTransform` with the HRNet/DarkPose rotation law.

    MMPose draws the angle as ``truncnorm(-1, 1) * rotate_factor``; HRNet,
    DarkPose and TransPose draw ``clip(N(0, 1) * rotate_sigma, -rotate_factor,
    rotate_factor)`` (sigma 45, clipped at 90 degrees, so about 4.6% of the
    rotated crops sit exactly at +-90). Shift and scale are MMPose's (its
    truncated-normal scale already equals the original's clipped normal).

    Args:
        rotate_sigma (float): Standard deviation of the angle in degrees.
            Defaults to 45.
        rotate_factor (float): Clip bound in degrees. Defaults to 90.
        Other arguments: as :class:`RandomBBoxTransform`.
    """

    def __init__(self,
                 shift_factor: float = 0.,
                 shift_prob: float = 0.,
                 scale_factor: Tuple[float, float] = (0.65, 1.35),
                 scale_prob: float = 1.0,
                 rotate_sigma: float = 45.,
                 rotate_factor: float = 90.,
                 rotate_prob: float = 0.6) -> None:
        super().__init__(shift_factor=shift_factor, shift_prob=shift_prob,
                         scale_factor=scale_factor, scale_prob=scale_prob,
                         rotate_factor=rotate_factor, rotate_prob=rotate_prob)
        self.rotate_sigma = rotate_sigma

    def _get_transform_params(self, num_bboxes: int) -> Tuple:
        offset, scale, _ = super()._get_transform_params(num_bboxes)
        rotate = np.clip(
            np.random.randn(num_bboxes) * self.rotate_sigma,
            -self.rotate_factor, self.rotate_factor).astype(np.float32)
        rotate = np.where(
            np.random.rand(num_bboxes) < self.rotate_prob, rotate, 0.)
        return offset, scale, rotate

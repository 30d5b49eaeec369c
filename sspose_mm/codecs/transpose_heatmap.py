from typing import Optional, Tuple

import numpy as np
from mmpose.codecs import UDPHeatmap
from mmpose.codecs.utils import get_heatmap_maximum, refine_keypoints_dark
from mmpose.registry import KEYPOINT_CODECS


def generate_full_gaussian_heatmaps(heatmap_size: Tuple[int, int],
                                    keypoints: np.ndarray,
                                    keypoints_visible: np.ndarray, sigma: float
                                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Untruncated Gaussians at sub-pixel centres (DarkPose/TransPose target),
    all keypoints in one array operation.

    ``(1, K, 2)`` keypoints and ``sigma`` in heatmap pixels, ``(1, K)``
    visibilities -> heatmaps ``(K, H, W)`` float32 of ``heatmap_size = (W,
    H)`` and weights ``(1, K)``. A keypoint whose 3-sigma box lies entirely
    outside the map gets weight 0 and an empty map, as in the original.
    """
    W, H = heatmap_size
    weights = keypoints_visible.astype(np.float32, copy=True)
    radius = 3 * sigma
    # The original's integer box test (int() truncates), in the keypoints'
    # own precision.
    left_top = np.trunc(keypoints[0] - radius)
    right_bottom = np.trunc(keypoints[0] + radius + 1)
    outside = (left_top >= [W, H]).any(-1) | (right_bottom < 0).any(-1)
    weights[0, (weights[0] > 0.5) & outside] = 0
    # float32 whatever the keypoints' type, as numpy 1.x computes a float32
    # grid minus a float64 scalar: the original's numbers, bit for bit.
    mu = keypoints[0].astype(np.float32)
    dx2 = (np.arange(W, dtype=np.float32) - mu[:, 0, None, None])**2
    dy2 = (np.arange(H, dtype=np.float32)[:, None] - mu[:, 1, None, None])**2
    heatmaps = np.exp(-(dx2 + dy2) / (2 * sigma**2))
    heatmaps[weights[0] <= 0.5] = 0
    return heatmaps, weights


@KEYPOINT_CODECS.register_module()
class TransPoseHeatmap(UDPHeatmap):
    """Heatmap target and decoding of `TransPose`_ (from DarkPose).

    :class:`UDPHeatmap`'s coordinates (input and heatmap related by
    ``(input - 1) / (heatmap - 1)``, as ``TopdownAffine(use_udp=True)``);
    it differs where the original does:

    - encode: the Gaussian covers the whole map instead of being cut off at
      3 sigma (weights and the out-of-map rule are the same);
    - decode: argmax, then DARK's Taylor step on the log of the blurred
      heatmap with the 2-pixel second-derivative stencil of
      :func:`refine_keypoints_dark` (MMPose's UDP uses the DARK-UDP stencil),
      then scaled by ``input / (heatmap - 1)``.

    Args:
        input_size (tuple): ``(w, h)`` of the network input.
        heatmap_size (tuple): ``(W, H)`` of the heatmaps.
        sigma (float): Gaussian sigma.
        blur_kernel_size (int): DARK's blur.

    .. _`TransPose`: https://arxiv.org/abs/2012.14214
    """

    def __init__(self,
                 input_size: Tuple[int, int],
                 heatmap_size: Tuple[int, int],
                 sigma: float = 2.,
                 blur_kernel_size: int = 11) -> None:
        super().__init__(
            input_size=input_size,
            heatmap_size=heatmap_size,
            sigma=sigma,
            blur_kernel_size=blur_kernel_size)

    def encode(self,
               keypoints: np.ndarray,
               keypoints_visible: Optional[np.ndarray] = None) -> dict:
        """Keypoints ``(1, K, 2)`` in input pixels to ``heatmaps``
        ``(K, H, W)`` and ``keypoint_weights`` ``(1, K)``."""
        if keypoints.shape[0] != 1:
            raise ValueError(f'{type(self).__name__} encodes one instance at '
                             f'a time, got {keypoints.shape[0]}')
        if keypoints_visible is None:
            keypoints_visible = np.ones(keypoints.shape[:2], dtype=np.float32)
        heatmaps, weights = generate_full_gaussian_heatmaps(
            self.heatmap_size, keypoints / self.scale_factor,
            keypoints_visible, self.sigma)
        return dict(heatmaps=heatmaps, keypoint_weights=weights)

    def decode(self, encoded: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Heatmaps ``(K, H, W)`` to keypoints ``(1, K, 2)`` in input pixels
        and scores ``(1, K)`` (the un-blurred maxima)."""
        heatmaps = encoded.copy()
        keypoints, scores = get_heatmap_maximum(heatmaps)
        keypoints = refine_keypoints_dark(keypoints[None], heatmaps,
                                          self.blur_kernel_size)
        W, H = self.heatmap_size
        keypoints = keypoints / [W - 1, H - 1] * self.input_size
        return keypoints, scores[None]

"""Associative-embedding targets at several heatmap resolutions."""
from typing import Optional, Sequence, Tuple

import numpy as np
from mmpose.codecs import AssociativeEmbedding
from mmpose.codecs.utils import (generate_gaussian_heatmaps,
                                 generate_udp_gaussian_heatmaps)
from mmpose.registry import KEYPOINT_CODECS
from torch import Tensor


@KEYPOINT_CODECS.register_module()
class MultiResolutionAssociativeEmbedding(AssociativeEmbedding):
    """MMPose's :class:`~mmpose.codecs.AssociativeEmbedding`, with heatmap
    targets at more than one resolution, for HigherHRNet-style heads.

    ``heatmap_size`` is the resolution of the tags (and of the first heatmap
    target); ``higher_heatmap_sizes`` add heatmap targets at higher
    resolutions, each a Gaussian of the same ``sigma`` in its own pixels.
    Decoding is MMPose's, unchanged.

    Two differences to the parent, both needed for bottom-up training:

    * Without UDP, a keypoint goes to the heatmap pixel that *contains* it
      (``floor(x / stride)``), as in HigherHRNet, not to the nearest pixel
      (``round``). The decoder resizes heatmaps with ``align_corners=False``
      and adds ``decode_center_shift=0.5``, which places a peak at the centre
      of its pixel; only ``floor`` makes that unbiased (``round`` shifts every
      decoded keypoint by half a heatmap pixel, 2 input pixels at 1/4).
    * ``field_mapping_table``/``label_mapping_table`` name what
      :class:`~mmpose.datasets.transforms.PackPoseInputs` must pack:
      the (list of) heatmaps, the heatmap masks of
      :class:`~mmpose.datasets.transforms.BottomupGetHeatmapMask`, the keypoint
      indices and weights (MMPose's defaults drop the indices).

    Encoded:

        - heatmaps (np.ndarray | list[np.ndarray]): ``(K, H, W)`` at
          ``heatmap_size``, or a list lowest resolution first when
          ``higher_heatmap_sizes`` is given
        - keypoint_indices (np.ndarray): ``(N, K, 2)`` ``[y * W + x, visible]``
          at ``heatmap_size``
        - keypoint_weights (np.ndarray): ``(N, K)``

    Args:
        input_size (tuple): Image size ``(w, h)``.
        heatmap_size (tuple): Tag/first heatmap size ``(W, H)``.
        higher_heatmap_sizes (sequence of tuple): Further heatmap sizes
            ``(W, H)``, increasing. Defaults to none (plain AE targets).
        sigma (float, optional): Gaussian sigma in heatmap pixels at every
            resolution. Defaults to the parent's size-dependent value.
        **kwargs: The parent's ``use_udp`` and ``decode_*`` arguments.
    """

    field_mapping_table = dict(
        heatmaps='heatmaps', heatmap_mask='heatmap_mask')
    label_mapping_table = dict(
        keypoint_indices='keypoint_indices',
        keypoint_weights='keypoint_weights')

    def __init__(self,
                 input_size: Tuple[int, int],
                 heatmap_size: Tuple[int, int],
                 higher_heatmap_sizes: Sequence[Tuple[int, int]] = (),
                 sigma: Optional[float] = None,
                 **kwargs) -> None:
        super().__init__(input_size, heatmap_size, sigma=sigma, **kwargs)
        self.higher_heatmap_sizes = [tuple(s) for s in higher_heatmap_sizes]

    def _heatmap_keypoints(self, keypoints: np.ndarray,
                           heatmap_size: Tuple[int, int]) -> np.ndarray:
        """Keypoints in the pixel units of ``heatmap_size``, shifted by -0.5
        without UDP so that MMPose's rounding becomes a floor."""
        input_size = np.array(self.input_size, dtype=np.float32)
        size = np.array(heatmap_size, dtype=np.float32)
        if self.use_udp:
            return keypoints * (size - 1) / (input_size - 1)
        return keypoints * size / input_size - 0.5

    def _heatmaps(self, keypoints: np.ndarray, keypoints_visible: np.ndarray,
                  heatmap_size: Tuple[int,
                                      int]) -> Tuple[np.ndarray, np.ndarray]:
        generate = (
            generate_udp_gaussian_heatmaps
            if self.use_udp else generate_gaussian_heatmaps)
        return generate(
            heatmap_size=heatmap_size,
            keypoints=self._heatmap_keypoints(keypoints, heatmap_size),
            keypoints_visible=keypoints_visible,
            sigma=self.sigma)

    def encode(self,
               keypoints: np.ndarray,
               keypoints_visible: Optional[np.ndarray] = None) -> dict:
        """Encode ``(N, K, 2)`` input-space keypoints (see class doc)."""
        if keypoints_visible is None:
            keypoints_visible = np.ones(keypoints.shape[:2], dtype=np.float32)
        heatmaps, keypoint_weights = self._heatmaps(keypoints,
                                                    keypoints_visible,
                                                    self.heatmap_size)
        keypoint_indices = self._encode_keypoint_indices(
            heatmap_size=self.heatmap_size,
            keypoints=self._heatmap_keypoints(keypoints, self.heatmap_size),
            keypoints_visible=keypoints_visible)
        if self.higher_heatmap_sizes:
            heatmaps = [heatmaps] + [
                self._heatmaps(keypoints, keypoints_visible, size)[0]
                for size in self.higher_heatmap_sizes
            ]
        return dict(
            heatmaps=heatmaps,
            keypoint_indices=keypoint_indices,
            keypoint_weights=keypoint_weights)

    def batch_decode(self, batch_heatmaps: Tensor, batch_tags: Tensor):
        """The parent's decoding; without a ``decode_keypoint_order`` the
        keypoints are grouped in index order (the parent requires one)."""
        if not self.decode_keypoint_order:
            self.decode_keypoint_order = list(range(batch_heatmaps.shape[1]))
        return super().batch_decode(batch_heatmaps, batch_tags)

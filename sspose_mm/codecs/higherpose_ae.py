"""Associative-embedding targets at several heatmap resolutions, and
HigherHRNet's grouping."""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmpose.codecs import AssociativeEmbedding
from mmpose.registry import KEYPOINT_CODECS
from munkres import Munkres
from torch import Tensor


def generate_gaussian_heatmaps_at_once(heatmap_size: Tuple[int, int],
                                       keypoints: np.ndarray,
                                       keypoints_visible: np.ndarray,
                                       sigma: float, use_udp: bool
                                       ) -> Tuple[np.ndarray, np.ndarray]:
    """MMPose's ``generate_gaussian_heatmaps`` (or with ``use_udp``
    ``generate_udp_gaussian_heatmaps``), the same numbers, in one array
    operation instead of a Python loop over instances and keypoints.

    Each labelled keypoint whose 3-sigma box touches the map pastes a
    ``(2r+1) x (2r+1)`` Gaussian patch (``r = 3 sigma``) at ``int(x + 0.5)``
    (centred on the pixel, or with UDP on the sub-pixel position); patches of
    one keypoint type keep their maximum. ``(N, K, 2)`` keypoints and
    ``sigma`` in heatmap pixels, ``(N, K)`` visibilities -> heatmaps ``(K, H,
    W)`` float32 of ``heatmap_size = (W, H)`` and weights ``(N, K)`` (the
    visibilities, 0 where the box lies outside the map).
    """
    K = keypoints.shape[1]
    W, H = heatmap_size
    heatmaps = np.zeros((K, H, W), dtype=np.float32)
    weights = keypoints_visible.copy()
    radius = sigma * 3
    grid = np.arange(0, 2 * radius + 1, 1, dtype=np.float32)
    centre = (keypoints + 0.5).astype(np.int64)
    # Boxes as MMPose computes them: float bounds truncated towards zero.
    start = (centre - radius).astype(np.int64)
    end = (centre + radius + 1).astype(np.int64)
    labelled = keypoints_visible >= 0.5
    touches = (start < [W, H]).all(-1) & (end >= 0).all(-1)
    weights[labelled & ~touches] = 0
    n, k = np.nonzero(labelled & touches)
    offset = (2 * radius + 1) // 2
    if use_udp:  # each patch centred on its keypoint's sub-pixel position
        shift = keypoints[n, k] - centre[n, k]
        x0, y0 = (offset + shift).astype(np.float32).T[..., None, None]
        patches = np.exp(-((grid - x0)**2 + (grid[:, None] - y0)**2) /
                         (2 * sigma**2))
    else:  # one patch for all
        patches = np.broadcast_to(
            np.exp(-((grid - offset)**2 + (grid[:, None] - offset)**2) /
                   (2 * sigma**2)), (len(n), len(grid), len(grid)))
    # Pixel coordinates of every patch row and column, (M, 2r+1), kept
    # where inside the map and before the box's end.
    x = start[n, k, 0, None] + np.arange(len(grid))
    y = start[n, k, 1, None] + np.arange(len(grid))
    inside = (((y >= 0) & (y < np.minimum(H, end[n, k, 1, None])))[:, :, None]
              & ((x >= 0) & (x < np.minimum(W, end[n, k, 0, None])))[:, None])
    flat = (k[:, None, None] * H + y[:, :, None]) * W + x[:, None, :]
    np.maximum.at(heatmaps.reshape(-1), flat[inside], patches[inside])
    return heatmaps, weights


def group_keypoints_by_tags(vals: np.ndarray,
                            tags: np.ndarray,
                            locs: np.ndarray,
                            keypoint_order: Sequence[int],
                            val_thr: float,
                            tag_thr: float,
                            max_matched_groups: Optional[int] = None
                            ) -> np.ndarray:
    """Greedy associative-embedding grouping of HigherHRNet (and HigherPose,
    LitePose): keypoint types in ``keypoint_order``; each type's candidates
    scoring above ``val_thr`` are assigned (Hungarian, cost ``round(tag
    distance) * 100 - score``) to the existing groups by their mean tag; a
    candidate further than ``tag_thr`` from its group starts a new one.

    ``max_matched_groups`` (HigherHRNet's ``MAX_NUM_PEOPLE``; None: no cap)
    caps only the matching: candidates are matched against the first that
    many groups (in the order they were started) and every group is
    returned. MMPose's ``decode_max_instances`` instead matches against all
    groups and returns the first ones, dropping whole people. As in both, a
    group is keyed by the first tag value of the candidate that started it,
    so a new group whose key exists already joins that group.

    Candidate scores ``vals`` ``(K, M)``, ``tags`` ``(K, M, L)`` and ``locs``
    ``(K, M, D)`` -> ``(G, K, D + 1)`` groups, locations and scores (zero
    where a group has no keypoint of a type).
    """
    num_keypoints, _, dim = locs.shape
    groups: Dict[float, np.ndarray] = {}
    group_tags: Dict[float, List[np.ndarray]] = {}
    for k in keypoint_order:
        keep = vals[k] > val_thr
        points = np.concatenate([locs[k], vals[k, :, None]], axis=1)[keep]
        point_tags = tags[k][keep]
        keys = list(groups)[:max_matched_groups]
        matched: Dict[int, float] = {}
        if len(points) and keys:
            mean_tags = np.stack([np.mean(group_tags[key], 0) for key in keys])
            distance = np.linalg.norm(
                point_tags[:, None] - mean_tags[None], axis=2)
            # The score only breaks ties between groups at the same rounded
            # distance; surplus candidates get impossible dummy groups.
            cost = np.round(distance) * 100 - points[:, dim:]
            surplus = len(points) - len(keys)
            if surplus > 0:
                cost = np.pad(
                    cost, ((0, 0), (0, surplus)), constant_values=1e10)
            matched = {
                row: keys[col]
                for row, col in Munkres().compute(cost)
                if col < len(keys) and distance[row, col] < tag_thr
            }
        for row, (point, tag) in enumerate(zip(points, point_tags)):
            key = matched.get(row, tag[0])
            groups.setdefault(key, np.zeros((num_keypoints, dim + 1)))[k] = \
                point
            if row in matched:
                group_tags[key].append(tag)
            else:
                group_tags[key] = [tag]
    if not groups:
        return np.zeros((0, num_keypoints, dim + 1), np.float32)
    return np.stack(list(groups.values())).astype(np.float32)


@KEYPOINT_CODECS.register_module()
class MultiResolutionAssociativeEmbedding(AssociativeEmbedding):
    """MMPose's :class:`~mmpose.codecs.AssociativeEmbedding`, with heatmap
    targets at more than one resolution, for HigherHRNet-style heads.

    The grouping is HigherHRNet's (:func:`group_keypoints_by_tags`, with
    ``decode_max_matched_groups`` as its cap), the rest of decoding MMPose's.
    Two more differences to the parent, both needed for bottom-up training:

    * Without UDP, a keypoint goes to the heatmap pixel that *contains* it
      (``floor(x / stride)``), as in HigherHRNet, not to the nearest one
      (``round``): the decoder resizes heatmaps with ``align_corners=False``
      and adds ``decode_center_shift=0.5``, so ``round`` would shift every
      decoded keypoint by half a heatmap pixel (2 input pixels at 1/4).
    * ``field_mapping_table``/``label_mapping_table`` have ``PackPoseInputs``
      pack the (list of) heatmaps, the masks of ``BottomupGetHeatmapMask``,
      the keypoint indices and weights (MMPose's defaults drop the indices).

    Encoded: ``heatmaps`` ``(K, H, W)`` (with ``higher_heatmap_sizes`` a
    list, lowest resolution first), ``keypoint_indices`` ``(N, K, 2)``
    ``[y * W + x, visible]`` and ``keypoint_weights`` ``(N, K)``.

    Args:
        input_size (tuple): Image size ``(w, h)``.
        heatmap_size (tuple): Size ``(W, H)`` of the tags and first heatmaps.
        higher_heatmap_sizes (sequence of tuple): Further heatmap sizes
            ``(W, H)``, increasing; none gives plain AE targets.
        sigma (float, optional): Gaussian sigma in the pixels of every
            resolution; None: the parent's size-dependent value.
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
                 decode_max_matched_groups: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(input_size, heatmap_size, sigma=sigma, **kwargs)
        self.higher_heatmap_sizes = [tuple(s) for s in higher_heatmap_sizes]
        self.decode_max_matched_groups = decode_max_matched_groups

    def _heatmap_keypoints(self, keypoints: np.ndarray,
                           heatmap_size: Tuple[int, int]) -> np.ndarray:
        """Keypoints in the pixel units of ``heatmap_size``, shifted by -0.5
        without UDP so that MMPose's rounding becomes a floor."""
        input_size = np.array(self.input_size, dtype=np.float32)
        size = np.array(heatmap_size, dtype=np.float32)
        if self.use_udp:
            return keypoints * (size - 1) / (input_size - 1)
        return keypoints * size / input_size - 0.5

    def _encode_keypoint_indices(self, heatmap_size: Tuple[int, int],
                                 keypoints: np.ndarray,
                                 keypoints_visible: np.ndarray) -> np.ndarray:
        """The parent's ``(N, K, 2)`` ``[y * W + x, visible]`` at pixels
        ``int(p + 0.5)`` of ``(N, K, 2)`` keypoints, without its loop."""
        w, h = heatmap_size
        cells = (keypoints + 0.5).astype(np.int64)
        x, y = cells[..., 0], cells[..., 1]
        visible = ((keypoints_visible > 0.5) & (x >= 0) & (x < w) & (y >= 0)
                   & (y < h))
        return np.stack([y * w + x, visible], axis=-1).astype(np.int64)

    def encode(self,
               keypoints: np.ndarray,
               keypoints_visible: Optional[np.ndarray] = None) -> dict:
        """Encode ``(N, K, 2)`` input-space keypoints (see class doc)."""
        if keypoints_visible is None:
            keypoints_visible = np.ones(keypoints.shape[:2], dtype=np.float32)
        (heatmaps, keypoint_weights), *higher = [
            generate_gaussian_heatmaps_at_once(
                size, self._heatmap_keypoints(keypoints, size),
                keypoints_visible, self.sigma, self.use_udp)
            for size in [self.heatmap_size, *self.higher_heatmap_sizes]
        ]
        keypoint_indices = self._encode_keypoint_indices(
            self.heatmap_size,
            self._heatmap_keypoints(keypoints, self.heatmap_size),
            keypoints_visible)
        if higher:
            heatmaps = [heatmaps] + [maps for maps, _ in higher]
        return dict(
            heatmaps=heatmaps,
            keypoint_indices=keypoint_indices,
            keypoint_weights=keypoint_weights)

    def _group_keypoints(self, batch_vals: np.ndarray, batch_tags: np.ndarray,
                         batch_locs: np.ndarray) -> List[np.ndarray]:
        """:func:`group_keypoints_by_tags` of each image (``(B, K, M)``,
        ``(B, K, M, L)``, ``(B, K, M, 2)``), cut to ``decode_max_instances``.
        """
        options = (self.decode_keypoint_order, self.decode_keypoint_thr,
                   self.decode_tag_thr, self.decode_max_matched_groups)
        return [
            group_keypoints_by_tags(*image,
                                    *options)[:self.decode_max_instances]
            for image in zip(batch_vals, batch_tags, batch_locs)
        ]

    def batch_decode(self, batch_heatmaps: Tensor, batch_tags: Tensor):
        """The parent's decoding; without a ``decode_keypoint_order`` the
        keypoints are grouped in index order (the parent requires one)."""
        if not self.decode_keypoint_order:
            self.decode_keypoint_order = list(range(batch_heatmaps.shape[1]))
        return super().batch_decode(batch_heatmaps, batch_tags)

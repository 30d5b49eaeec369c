from typing import Dict, Optional, Tuple

import cv2
import numpy as np
from mmpose.datasets.transforms import TopdownAffine
from mmpose.registry import TRANSFORMS
from mmpose.structures.bbox import get_udp_warp_matrix


def with_positive_strides(image: np.ndarray) -> np.ndarray:
    """``image`` itself, or a copy with positive strides where it is a
    mirrored view (negative row or column strides).

    MMPose's ``RandomFlip`` mirrors an image as a view (``np.flip``), which
    OpenCV first copies to positive strides through numpy: for a 640x480
    colour image that copy takes about 1 ms on one core, several times the
    crop that follows. ``cv2.flip`` of the view's own memory makes the same
    pixels some 50 times faster.
    """
    rows, columns = image.strides[0] < 0, image.strides[1] < 0
    if not (rows or columns):
        return image
    memory = image[::-1 if rows else 1, ::-1 if columns else 1]
    return cv2.flip(memory, -1 if rows and columns else 0 if rows else 1)


@TRANSFORMS.register_module()
class TransPoseAffine(TopdownAffine):
    """The crop of TransPose (DarkPose's aligned-corner affine) and the
    ``input_scale`` that makes MMPose map predictions back as it does.

    Differences from ``TopdownAffine(use_udp=True)``, all from the original:

    - The warp is a similarity set by the box width alone: ``S_w - 1``
      image pixels map to ``w - 1`` input pixels on both axes (``S_w`` is
      the aspect-fixed box width in pixels, the official ``scale * 200``).
      MMPose scales each axis by its own box side.
    - ``input_scale`` is not the warp's box but ``(S_w - 1, (S_w - 1) *
      (H - 1) / (W - 1))`` with the heatmap size ``(W, H)``. With it,
      ``TopdownPoseEstimator``'s ``x_in / w * input_scale + input_center -
      input_scale / 2`` applied to :class:`TransPoseHeatmap`'s ``x_in =
      x_hm / (W - 1) * w`` gives the official back-transform
      ``c + (x_hm - (W - 1) / 2) * (S_w - 1) / (W - 1)`` on both axes, so
      converted checkpoints reproduce the published numbers. MMPose's own
      mapping is about half a pixel off at the heatmap border; the
      original's is not the exact inverse of its crop either (the vertical
      factors differ by ``(h - 1)(W - 1) / ((w - 1)(H - 1))``, 0.4% at
      256x192 / 64x48): this reproduces it, it does not fix it.

    ``bbox_scale`` keeps MMPose's meaning (the aspect-fixed box, used for
    instance areas by the COCO metric).

    Args:
        input_size (tuple): ``(w, h)`` of the network input.
        heatmap_size (tuple): ``(W, H)`` of the model's heatmaps.
    """

    def __init__(self, input_size: Tuple[int, int],
                 heatmap_size: Tuple[int, int]) -> None:
        super().__init__(input_size=input_size, use_udp=True)
        self.heatmap_size = heatmap_size

    def warp_matrix(self,
                    center: np.ndarray,
                    box_width: float,
                    rotation: float = 0.) -> np.ndarray:
        """``(2, 3)`` image -> input warp for an aspect-fixed box
        ``box_width`` pixels wide (``input_scale[0] + 1``)."""
        w, h = self.input_size
        # get_udp_warp_matrix maps a box of `scale` pixels onto w - 1 x h - 1.
        mapped_box = np.array(
            [box_width - 1, (box_width - 1) * (h - 1) / (w - 1)],
            dtype=np.float32)
        return get_udp_warp_matrix(
            center, mapped_box, rotation, output_size=(w, h))

    def transform(self, results: Dict) -> Optional[dict]:
        w, h = self.input_size
        if results['bbox_center'].shape[0] != 1:
            raise ValueError('TransPoseAffine crops one instance, got '
                             f'{results["bbox_center"].shape[0]} boxes.')
        results['bbox_scale'] = self._fix_aspect_ratio(
            results['bbox_scale'], aspect_ratio=w / h)
        center = results['bbox_center'][0]
        box_width = float(results['bbox_scale'][0, 0])
        rotation = results['bbox_rotation'][0] \
            if 'bbox_rotation' in results else 0.
        warp_mat = self.warp_matrix(center, box_width, rotation)

        def warp(image: np.ndarray) -> np.ndarray:
            return cv2.warpAffine(
                with_positive_strides(image),
                warp_mat, (int(w), int(h)),
                flags=cv2.INTER_LINEAR)

        images = results['img']
        results['img'] = ([warp(image) for image in images] if isinstance(
            images, list) else warp(images))
        if results.get('keypoints') is not None:
            transformed = results.get('transformed_keypoints')
            transformed = (results['keypoints']
                           if transformed is None else transformed).copy()
            transformed[..., :2] = cv2.transform(results['keypoints'][..., :2],
                                                 warp_mat)
            results['transformed_keypoints'] = transformed
        else:
            results['transformed_keypoints'] = np.zeros([])
            results['keypoints_visible'] = np.ones((1, 1, 1))

        W, H = self.heatmap_size
        results['input_size'] = (w, h)
        results['input_center'] = center
        results['input_scale'] = np.array(
            [box_width - 1, (box_width - 1) * (H - 1) / (W - 1)],
            dtype=np.float32)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(input_size={self.input_size}, '
                f'heatmap_size={self.heatmap_size})')

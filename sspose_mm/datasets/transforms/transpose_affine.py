from typing import Dict, Optional, Tuple

import cv2
import numpy as np
from mmpose.datasets.transforms import TopdownAffine
from mmpose.registry import TRANSFORMS
from mmpose.structures.bbox import get_udp_warp_matrix


def with_positive_strides(image: np.ndarray) -> np.ndarray:
    """``image``, or a positive-stride copy of a mirrored view.

    MMPose's ``RandomFlip`` mirrors as a view (``np.flip``), which OpenCV
    copies through numpy first (about 1 ms for 640x480, several times the
    crop); ``cv2.flip`` of the view's memory is some 50 times faster.
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

    Unlike ``TopdownAffine(use_udp=True)``, as the original:

    - the warp is a similarity set by the box width alone: ``S_w - 1``
      image pixels (``S_w``: aspect-fixed box width, the official ``scale *
      200``) map to ``w - 1`` input pixels on both axes;
    - ``input_scale`` is ``(S_w - 1, (S_w - 1) * (H - 1) / (W - 1))`` for
      heatmaps ``(W, H)``, so ``TopdownPoseEstimator`` maps
      :class:`TransPoseHeatmap`'s ``x_in = x_hm / (W - 1) * w`` as the
      official ``c + (x_hm - (W - 1) / 2) * (S_w - 1) / (W - 1)`` and
      converted checkpoints reproduce the published numbers. That is no
      exact inverse of the crop either (vertical factors differ by ``(h -
      1)(W - 1) / ((w - 1)(H - 1))``, 0.4% at 256x192 / 64x48): reproduced.

    ``bbox_scale`` keeps MMPose's meaning (the COCO metric's areas).
    ``input_size`` is ``(w, h)``, ``heatmap_size`` ``(W, H)``.
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

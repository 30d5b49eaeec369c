from typing import List, Optional, Tuple

from mmpose.datasets.transforms import BottomupResize
from mmpose.registry import TRANSFORMS


@TRANSFORMS.register_module()
class BottomupSquareResize(BottomupResize):
    """The test resize of HigherHRNet-derived code as HigherPose (and
    LitePose) ship it: every image becomes one ``S x S`` input.

    The image is scaled, keeping its aspect ratio, so that its **width**
    becomes ``S`` (``input_size`` rounded up to ``size_factor``), and centred
    in the ``S x S`` canvas: a landscape image is padded above and below
    (as MMPose's ``resize_mode='fit'``), a portrait image loses
    ``(h - w) / 2`` of its rows above and below (``'fit'`` would scale its
    height to ``S`` and pad the sides; ``'expand'``, MMPose's AE recipes'
    and this package's default, keeps every pixel with the short side at
    ``S`` and a longer input). The released code's ``get_multi_scale_size``
    computes this (its aspect-keeping branch is commented out), and its
    ``get_affine_transform`` scales by the width alone.

    Only the sizes differ from :class:`~mmpose.datasets.transforms.
    BottomupResize`: the warp, ``input_center`` and ``input_scale``
    (``(w, w)``: the ``S x S`` input covers ``w x w`` image pixels) are
    the parent's, so :class:`~mmpose.models.BottomupPoseEstimator` maps
    predictions back to the image with the same matrix. The released code
    puts the centre at the integer pixel ``int(w / 2 + 0.5)`` where MMPose
    uses ``w / 2``: for odd sizes its input is shifted by half an image
    pixel, undone by its own back-transform as here by ours.

    Args:
        input_size (tuple): ``(S, S)``, the input size of the model.
        aug_scales (list of float, optional): Extra scales for multi-scale
            testing, as the parent's.
        size_factor (int): ``S`` is rounded up to a multiple of it.
            Defaults to 32.
        pad_val (tuple): Value of the padded pixels. Defaults to black.
    """

    def __init__(self,
                 input_size: Tuple[int, int],
                 aug_scales: Optional[List[float]] = None,
                 size_factor: int = 32,
                 pad_val: tuple = (0, 0, 0)) -> None:
        super().__init__(
            input_size,
            aug_scales=aug_scales,
            size_factor=size_factor,
            pad_val=pad_val)

    def _get_input_size(self, img_size: Tuple[int, int],
                        input_size: Tuple[int, int]) -> Tuple:
        """``(S, S * h / w)``, the scaled image, and ``(S, S)``, the input
        it is centred in (both ``(w, h)``)."""
        img_w, img_h = img_size
        padded_input_size = self._ceil_to_multiple(input_size,
                                                   self.size_factor)
        width = padded_input_size[0]
        return (width, width * img_h / img_w), padded_input_size

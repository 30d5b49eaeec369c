from typing import List, Optional, Tuple

from mmpose.datasets.transforms import BottomupResize
from mmpose.registry import TRANSFORMS


@TRANSFORMS.register_module()
class BottomupSquareResize(BottomupResize):
    """The test resize HigherPose (and LitePose) ship from HigherHRNet: every
    image becomes one ``S x S`` input (``S``: ``input_size`` rounded up to
    ``size_factor``).

    The image is scaled to width ``S`` keeping its aspect ratio and centred:
    a landscape image is padded above and below (as ``'fit'``), a portrait
    one loses ``(h - w) / 2`` rows above and below (``'fit'`` pads the
    sides; ``'expand'``, MMPose's and this package's default, keeps every
    pixel). The warp, ``input_center`` and ``input_scale`` (``(w, w)``) are
    ``BottomupResize``'s, so predictions map back with the same matrix. The
    released centre ``int(w / 2 + 0.5)`` shifts odd sizes by half a pixel,
    undone by its own back-transform as here.
    """

    def __init__(self,
                 input_size: Tuple[int, int],
                 aug_scales: Optional[List[float]] = None,
                 size_factor: int = 32,
                 pad_val: tuple = (0, 0, 0)) -> None:
        # No resize_mode or use_udp: the released resize has one mode and
        # one warp, so a config asking for another is refused, not ignored.
        super().__init__(input_size, aug_scales, size_factor, pad_val=pad_val)

    def _get_input_size(self, img_size: Tuple[int, int],
                        input_size: Tuple[int, int]) -> Tuple:
        """``(S, S * h / w)``, the scaled image, and ``(S, S)``, the input
        it is centred in (both ``(w, h)``)."""
        img_w, img_h = img_size
        padded_input_size = self._ceil_to_multiple(input_size,
                                                   self.size_factor)
        width = padded_input_size[0]
        return (width, width * img_h / img_w), padded_input_size

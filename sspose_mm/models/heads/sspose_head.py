"""SSpose's heatmap head on the final attention layer's tokens."""
from typing import Tuple

from mmpose.models.heads import HeatmapHead
from mmpose.registry import MODELS
from torch import Tensor

from ..utils import gather_tokens


@MODELS.register_module()
class SSposeHead(HeatmapHead):
    """Heatmaps from the tokens of the transformer's last layer.

    SSpose describes no head beyond "the final attention layer aggregates
    the attention scores to determine the heatmap" and explains a keypoint
    by that layer's attention row at its location (TransPose's dependency
    maps). So this is MMPose's :class:`HeatmapHead` (args as there,
    ``in_channels`` the token width) on the backbone's normed token grid
    ``(B, C, h, w)``, plus that explanation, :meth:`keypoint_dependency`.
    """

    @staticmethod
    def keypoint_dependency(heatmaps: Tensor, attention: Tensor,
                            token_grid: Tuple[int, int]) -> Tensor:
        """What each predicted keypoint depends on in the last layer.

        From ``(B, K, H_hm, W_hm)`` heatmaps and the last layer's
        head-averaged ``(B, N, N)`` attention (``collect_attention(model,
        x)[-1]``) over the ``N = h * w`` row-major tokens of ``token_grid =
        (h, w)``: ``(B, K, h, w)``, for every keypoint the attention row of
        the token under its heatmap maximum (rows sum to 1).
        """
        b, k, hm_h, hm_w = heatmaps.shape
        h, w = token_grid
        if attention.shape != (b, h * w, h * w):
            raise ValueError(f'attention has shape {tuple(attention.shape)},'
                             f' expected {(b, h * w, h * w)} for the token '
                             f'grid {token_grid}')
        peak = heatmaps.flatten(2).argmax(dim=-1)
        rows = (peak // hm_w) * h // hm_h
        cols = (peak % hm_w) * w // hm_w
        queries = rows * w + cols  # (B, K) token under each maximum
        return gather_tokens(attention, queries).reshape(b, k, h, w)

from .higherpose_ae import MultiResolutionAssociativeEmbedding  # noqa: F401
from .transpose_heatmap import (TransPoseHeatmap,
                                generate_full_gaussian_heatmaps)

__all__ = ['TransPoseHeatmap', 'generate_full_gaussian_heatmaps']

from .transpose_heatmap import TransPoseHeatmap, generate_full_gaussian_heatmaps
from .higherpose_ae import MultiResolutionAssociativeEmbedding  # noqa: F401

__all__ = ['TransPoseHeatmap', 'generate_full_gaussian_heatmaps']

from .bbox_transforms import ClippedRandomBBoxTransform
from .bottomup_square_resize import BottomupSquareResize
from .loading import LoadImageOrSkip
from .transpose_affine import TransPoseAffine

__all__ = [
    'BottomupSquareResize', 'ClippedRandomBBoxTransform', 'LoadImageOrSkip',
    'TransPoseAffine'
]

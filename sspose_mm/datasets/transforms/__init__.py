from .bbox_transforms import ClippedRandomBBoxTransform
from .loading import LoadImageOrSkip  # noqa: F401
from .transpose_affine import TransPoseAffine

__all__ = ['ClippedRandomBBoxTransform', 'TransPoseAffine']

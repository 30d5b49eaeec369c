from .bbox_transforms import ClippedRandomBBoxTransform
from .transpose_affine import TransPoseAffine

__all__ = ['ClippedRandomBBoxTransform', 'TransPoseAffine']

from .bbox_transforms import ClippedRandomBBoxTransform

__all__ = ['ClippedRandomBBoxTransform']

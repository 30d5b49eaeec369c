from .synthetic import COCO_LAYOUT, SkeletonLayout, generate_synthetic_coco
from .transforms import *  # noqa: F401,F403

__all__ = ['COCO_LAYOUT', 'SkeletonLayout', 'generate_synthetic_coco']

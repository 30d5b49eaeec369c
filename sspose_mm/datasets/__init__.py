from .synthetic import COCO_LAYOUT, SkeletonLayout, generate_synthetic_coco
from .transforms import *  # noqa: F401,F403
from .unlabeled_images import UnlabeledImageDataset  # noqa: F401
from .keypoint_layout import ToKeypointLayout  # noqa: F401
from .custom import CustomKeypointDataset  # noqa: F401

__all__ = ['COCO_LAYOUT', 'SkeletonLayout', 'generate_synthetic_coco']

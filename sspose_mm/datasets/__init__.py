from .custom import CustomKeypointDataset
from .keypoint_layout import ToKeypointLayout
from .transforms import *  # noqa: F401,F403
from .unlabeled_images import UnlabeledImageDataset

__all__ = [
    'CustomKeypointDataset', 'ToKeypointLayout', 'UnlabeledImageDataset'
]

from .higherpose_hrnet import HigherPoseHRNet  # noqa: F401
from .hrnet_s import HRNetS  # noqa: F401
from .sharpose_vit import SHaRPoseViT  # noqa: F401
from .sspose_convvit import SSposeConvViT  # noqa: F401

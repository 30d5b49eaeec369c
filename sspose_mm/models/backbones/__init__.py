from .hrnet_s import HRNetS
from .sspose_convvit import SSposeConvViT  # noqa: F401

__all__ = ['HRNetS']

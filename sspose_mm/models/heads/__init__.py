"""Heads of this package's pose models (one module per family)."""
from .higherhrnet_head import HigherHRNetHead  # noqa: F401
from .sharpose_head import SHaRPoseHead  # noqa: F401
from .sspose_head import SSposeHead  # noqa: F401

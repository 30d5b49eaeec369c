"""Heads of this package's pose models (one module per family)."""
from .sspose_head import SSposeHead  # noqa: F401

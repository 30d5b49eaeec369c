"""Self-supervised pretraining models (MAE-style)."""
from .sspose_mae import SSposeMAE  # noqa: F401

"""Losses of this package's pose models."""
from .ae_loss import BatchedAssociativeEmbeddingLoss  # noqa: F401

"""Self-supervised pretraining models (MAE-style)."""

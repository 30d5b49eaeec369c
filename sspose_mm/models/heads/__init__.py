"""Heads of this package's pose models (one module per family)."""

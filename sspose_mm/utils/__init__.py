"""Helpers below every other layer: ``models``, ``engine``, ``apis`` and
the tools may import them; they import none of those."""
from .checkpoint import strip_prefixes

__all__ = ['strip_prefixes']

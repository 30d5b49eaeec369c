"""Helpers below every other layer: ``models``, ``engine``, ``apis`` and
the tools may import them; they import none of those."""
from .checkpoint import (describe_reinitialised, drop_reinitialised_keys,
                         rename, strip_prefixes, swap, timm_vit_names)

__all__ = [
    'describe_reinitialised', 'drop_reinitialised_keys', 'rename',
    'strip_prefixes', 'swap', 'timm_vit_names'
]

"""Helpers below every other layer: ``models``, ``engine``, ``apis`` and
the tools may import them; they import none of those."""
from .checkpoint import (StateDict, describe_model, describe_reinitialised,
                         drop_reinitialised_keys, has_markers,
                         has_mmpose_names, key_differences, listing,
                         plain_state_dict, rename, require_fit, strip_prefixes,
                         swap, timm_vit_names)

__all__ = [
    'StateDict', 'describe_model', 'describe_reinitialised',
    'drop_reinitialised_keys', 'has_markers', 'has_mmpose_names',
    'key_differences', 'listing', 'plain_state_dict', 'rename', 'require_fit',
    'strip_prefixes', 'swap', 'timm_vit_names'
]

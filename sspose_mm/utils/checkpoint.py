"""Checkpoint state dicts as the models and hooks read them."""
from typing import Any, Dict, Sequence

from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present


def strip_prefixes(state_dict: Dict[str, Any],
                   prefixes: Sequence[str] = ('module.', )
                   ) -> Dict[str, Any]:
    """Remove each prefix in turn from the keys that start with it, in
    place: ``module.`` of a (Distributed)DataParallel model, ``backbone.``
    of a pose model's weights given to a backbone.

    Returns:
        dict: ``state_dict`` itself (renamed keys move to its end).
    """
    for prefix in prefixes:
        consume_prefix_in_state_dict_if_present(state_dict, prefix)
    return state_dict

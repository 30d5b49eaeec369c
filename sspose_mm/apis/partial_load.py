"""Loading a checkpoint into a model with another keypoint count.

Fine-tuning a COCO model (17 keypoints) on MPII (16) or a custom set keeps
every weight except the layer that predicts one map per keypoint, whose
shape changed. :func:`~sspose_mm.utils.drop_reinitialised_keys` decides
which checkpoint entries cannot be used, refuses anything beyond the layers
the user allowed to re-initialise (a wrong checkpoint must not load half-way
in silence) and names each dropped key; :func:`load_for_transfer` applies it
to a model, and :class:`~sspose_mm.engine.hooks.KeypointTransferHook` does
the same for a runner's ``load_from``.
"""
from typing import List, Sequence

import torch
from mmengine.logging import print_log
from mmengine.runner.checkpoint import load_state_dict

from ..fileio import safe_torch_load
from ..utils import (describe_reinitialised, drop_reinitialised_keys,
                     strip_prefixes)

__all__ = [
    'describe_reinitialised', 'drop_reinitialised_keys', 'load_for_transfer'
]


def load_for_transfer(model: torch.nn.Module,
                      checkpoint: str,
                      reinit: Sequence[str] = ('head.final_layer', ),
                      logger: str = 'current') -> List[str]:
    """Load ``checkpoint`` into ``model``, re-initialising ``reinit`` layers
    whose shapes changed (e.g. another keypoint count).

    Returns the re-initialised keys (see :func:`drop_reinitialised_keys`);
    they are also logged.
    """
    loaded = safe_torch_load(checkpoint, map_location='cpu')
    state_dict = strip_prefixes(loaded.get('state_dict', loaded))
    dropped = drop_reinitialised_keys(state_dict, model.state_dict(), reinit)
    print_log(describe_reinitialised(dropped), logger=logger)
    load_state_dict(model, state_dict, strict=False, logger=logger)
    return dropped

"""Loading a checkpoint into the model of a config: all or nothing, or all
but the layers the user names.

mmengine (and ``mmpose.apis.init_model``) load what fits, log a warning for
the rest and leave random weights there, so a checkpoint of another model
gives confident predictions from random weights. Every tool and
:func:`init_model` here go through :func:`check_checkpoint_fits` instead:
each tensor of the model must be in the checkpoint with its shape, and
nothing else may be, or loading stops with one sentence saying what the
file looks like.

Loading part of a checkpoint is only done where the user asks for it:
fine-tuning a COCO model (17 keypoints) on MPII (16) or a custom set keeps
every weight except the layer that predicts one map per keypoint, whose
shape changed. :func:`~sspose_mm.utils.drop_reinitialised_keys` decides
which checkpoint entries cannot be used, refuses anything beyond the layers
the user allowed to re-initialise (a wrong checkpoint must not load half-way
in silence) and names each dropped key; :func:`load_for_transfer` applies it
to a model, and :class:`~sspose_mm.engine.hooks.KeypointTransferHook` does
the same for a runner's ``load_from``.
"""
import logging
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
from torch import nn

from ..env import resolve_device
from ..errors import ConfigError
from ..fileio import safe_torch_load
from ..utils import (describe_reinitialised, drop_reinitialised_keys,
                     plain_state_dict, require_fit, strip_prefixes)
from .convert import describe_state_dict

UNTRAINED = 'none'


def is_untrained(checkpoint: Optional[str]) -> bool:
    """Whether ``checkpoint`` asks for no weights (None or ``"none"``)."""
    return checkpoint is None or checkpoint.lower() == UNTRAINED


def check_model_files(config: str, checkpoint: Optional[str]) -> None:
    """Stop when the config, or a checkpoint other than ``none``, is not a
    file (before anything slow is built)."""
    for path, what in ((config, 'config'),
                       (None if is_untrained(checkpoint) else checkpoint,
                        'checkpoint')):
        if path is not None and not osp.isfile(path):
            raise ConfigError(f'{what} "{path}" does not exist.')


def check_checkpoint_fits(model: nn.Module, path: str) -> Dict[str, Any]:
    """Read ``path`` (``weights_only``) and stop unless its state dict holds
    exactly the model's tensors with their shapes.

    Returns:
        dict: The loaded checkpoint, for the caller to load.

    Raises:
        CheckpointError: One sentence: what is missing, extra or reshaped,
            what the file looks like and what the config builds.
    """
    loaded = _load_checkpoint(path, map_location='cpu')
    require_fit(
        plain_state_dict(loaded, path), model.state_dict(), path,
        type(model).__name__, describe_state_dict)
    return loaded


def init_model(config,
               checkpoint: Optional[str] = None,
               device: Optional[str] = None,
               cfg_options: Optional[dict] = None) -> nn.Module:
    """``mmpose.apis.init_model`` that loads all of the checkpoint or stops.

    Args:
        config: Config file or :class:`mmengine.Config`.
        checkpoint: Checkpoint file; None or ``"none"`` keeps the fresh
            (untrained) weights, with a logged warning.
        device: Default: ``cuda:0`` when available, else ``cpu``.
        cfg_options: Overrides merged into the config.

    Returns:
        nn.Module: The estimator in eval mode, with ``cfg`` and
        ``dataset_meta`` (the checkpoint's if it has one, as MMPose does).

    Raises:
        CheckpointError: The checkpoint does not fit the config's model, is
            unreadable or refused (see :func:`check_checkpoint_fits`).
    """
    from mmpose.apis import init_model as mmpose_init_model
    model = mmpose_init_model(
        config, None, device='cpu', cfg_options=cfg_options)
    if is_untrained(checkpoint):
        print_log(
            'no checkpoint: the weights are random (untrained), and '
            'so are the predictions.',
            logger='current',
            level=logging.WARNING)
    else:
        loaded = check_checkpoint_fits(model, checkpoint)
        load_state_dict(model, plain_state_dict(loaded), strict=True)
        meta = loaded.get('meta') if isinstance(loaded, dict) else None
        if isinstance(meta, dict) and 'dataset_meta' in meta:
            model.dataset_meta = meta['dataset_meta']
    return model.to(resolve_device(device)).eval()


def load_for_transfer(model: nn.Module,
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

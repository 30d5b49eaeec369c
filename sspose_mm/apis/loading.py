"""Loading a checkpoint into the model of a config: all or nothing, or all
but the layers the user names.

mmengine (and ``mmpose.apis.init_model``) load what fits and leave random
weights in the rest; here the checkpoint must hold exactly the model's
tensors with their shapes (:func:`check_checkpoint_fits`) or loading stops
saying what the file looks like. Only fine-tuning on another keypoint set
re-initialises the layers the user names (:func:`load_for_transfer`, and
:class:`~sspose_mm.engine.hooks.KeypointTransferHook` for ``load_from``).
"""
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.logging import MMLogger, print_log
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
from mmpose.models import TopdownPoseEstimator
from mmpose.registry import MODELS
from torch import nn

from ..env import resolve_device
from ..errors import ConfigError
from ..fileio import safe_torch_load
from ..utils import (describe_reinitialised, drop_reinitialised_keys,
                     plain_state_dict, require_fit, strip_prefixes)
from .convert import describe_state_dict


def is_untrained(checkpoint: Optional[str]) -> bool:
    """Whether ``checkpoint`` asks for no weights (None or ``"none"``)."""
    return checkpoint is None or checkpoint.lower() == 'none'


def check_model_files(config: str, checkpoint: Optional[str]) -> None:
    """Stop when the config, or a checkpoint other than ``none``, is not a
    file (before anything slow is built)."""
    if not osp.isfile(config):
        raise ConfigError(f'config "{config}" does not exist.')
    if not is_untrained(checkpoint) and not osp.isfile(checkpoint):
        raise ConfigError(f'checkpoint "{checkpoint}" does not exist.')


def require_topdown(cfg: Config, tool: str) -> None:
    """Stop ``tool`` unless ``cfg`` builds a top-down estimator: a bottom-up
    model given boxes fails deep inside or draws nonsense. An unknown model
    type passes: building reports it."""
    model_type = cfg.model.get('type')
    estimator = (
        MODELS.get(model_type) if isinstance(model_type, str) else model_type)
    if estimator is None or issubclass(estimator, TopdownPoseEstimator):
        return
    raise ConfigError(
        f'{tool} is top-down only (it predicts people in person boxes), but '
        f'the config builds a {estimator.__name__}; for a bottom-up model '
        'use mmpose.apis.inference_bottomup in Python, or tools/test.py to '
        'evaluate it.')


def topdown_config(config: str, checkpoint: Optional[str],
                   tool: str) -> Config:
    """The config of a top-down ``tool``, after the checks that are cheap
    (:func:`check_model_files`, :func:`require_topdown`)."""
    check_model_files(config, checkpoint)
    cfg = Config.fromfile(config)
    require_topdown(cfg, tool)
    return cfg


def check_checkpoint_fits(model: nn.Module, path: str) -> Dict[str, Any]:
    """The checkpoint at ``path`` (read ``weights_only``), to load.

    Raises:
        CheckpointError: Its state dict does not hold exactly the model's
            tensors with their shapes; one sentence: what is missing, extra
            or reshaped, what the file looks like and what the config builds.
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

    A ``checkpoint`` of None or ``"none"`` keeps the untrained weights (with
    a logged warning); ``device`` defaults to ``cuda:0`` when available.
    Returns the estimator in eval mode, with ``cfg`` and ``dataset_meta``
    (the checkpoint's if it has one, as in MMPose).

    Raises:
        CheckpointError: The checkpoint does not fit the config's model, is
            unreadable or refused (see :func:`check_checkpoint_fits`).
    """
    from mmpose.apis import init_model as mmpose_init_model
    model = mmpose_init_model(
        config, None, device='cpu', cfg_options=cfg_options)
    if is_untrained(checkpoint):
        MMLogger.get_current_instance().warning(
            'no checkpoint: the weights are random (untrained), and '
            'so are the predictions.')
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
    whose shapes changed (e.g. another keypoint count); returns and logs the
    re-initialised keys (see :func:`drop_reinitialised_keys`)."""
    loaded = safe_torch_load(checkpoint, map_location='cpu')
    state_dict = strip_prefixes(loaded.get('state_dict', loaded))
    dropped = drop_reinitialised_keys(state_dict, model.state_dict(), reinit)
    print_log(describe_reinitialised(dropped), logger=logger)
    load_state_dict(model, state_dict, strict=False, logger=logger)
    return dropped

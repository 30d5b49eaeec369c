from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmpose.registry import HOOKS

_HISTORY_TAG = '__history_buffer__'


def to_plain(obj: Any) -> Any:
    """Replace numpy objects and ``HistoryBuffer``s by tensors and plain types.

    numpy arrays become tensors (restored by :func:`from_plain`), numpy
    scalars become Python numbers, history buffers become tagged dicts.
    """
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {
            _HISTORY_TAG: True,
            'log': torch.from_numpy(np.array(log)),
            'count': torch.from_numpy(np.array(count)),
            'max_length': obj.max_length
        }
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return type(obj)((k, to_plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    return obj


def from_plain(obj: Any) -> Any:
    """Inverse of :func:`to_plain` for ``meta`` and ``message_hub``.

    Tensors may come on any device: on a GPU ``Runner.resume`` loads the
    whole checkpoint onto CUDA, and numpy needs them in host memory.
    """
    if isinstance(obj, dict) and obj.get(_HISTORY_TAG):
        return HistoryBuffer(obj['log'].cpu().numpy(),
                             obj['count'].cpu().numpy(), obj['max_length'])
    if isinstance(obj, torch.Tensor):
        return obj.cpu().numpy()
    if isinstance(obj, dict):
        return type(obj)((k, from_plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(from_plain(v) for v in obj)
    return obj


@HOOKS.register_module()
class PlainCheckpointHook(Hook):
    """Write runner checkpoints that ``torch.load(weights_only=True)`` reads.

    mmengine stores numpy arrays (dataset meta) and ``HistoryBuffer`` objects
    (message hub) in every checkpoint, so with torch >= 2.6 they cannot be
    loaded safely, not even for testing. This hook converts ``meta`` and
    ``message_hub`` to tensors and plain types before saving and converts
    them back after the runner loads a checkpoint (resume, ``load_from``),
    so resuming restores exactly what was saved. The model weights,
    optimizer and scheduler states are already plain and stay untouched.

    Args:
        enable (bool): Switch the hook off with False (as MMPose's
            ``PoseVisualizationHook``): mmengine's Runner removes only its
            own default hooks when a config sets them to None.
    """

    priority = 'VERY_LOW'  # after every hook that adds to the checkpoint

    def __init__(self, enable: bool = True) -> None:
        self.enable = enable

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.enable:
            return
        for key in ('meta', 'message_hub'):
            if key in checkpoint:
                checkpoint[key] = to_plain(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # A checkpoint written with the hook reads back the same without it.
        for key in ('meta', 'message_hub'):
            if key in checkpoint:
                checkpoint[key] = from_plain(checkpoint[key])

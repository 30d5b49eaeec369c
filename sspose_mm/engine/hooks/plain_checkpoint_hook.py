from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.utils import apply_to
from mmpose.registry import HOOKS

_HISTORY_TAG = '__history_buffer__'


def _plain(obj: Any) -> Any:
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
    return obj.item()  # a numpy scalar


def to_plain(obj: Any) -> Any:
    """Turn numpy arrays into tensors, numpy scalars into Python numbers and
    ``HistoryBuffer``s into tagged dicts, in nested dicts, lists, tuples."""
    return apply_to(
        obj, lambda x: isinstance(x, (HistoryBuffer, np.ndarray, np.generic)),
        _plain)


def from_plain(obj: Any) -> Any:
    """Inverse of :func:`to_plain`; tensors (on any device: ``Runner.resume``
    loads onto the GPU) become numpy arrays."""
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

    mmengine puts numpy arrays (dataset meta) and ``HistoryBuffer``s (message
    hub) in every checkpoint, which torch >= 2.6 does not load safely. This
    hook saves ``meta`` and ``message_hub`` through :func:`to_plain` and
    restores them after any load (resume, ``load_from``), so a resume gets
    exactly what was saved. ``enable=False`` switches the hook off.
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

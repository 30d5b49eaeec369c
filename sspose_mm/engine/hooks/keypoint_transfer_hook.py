from typing import Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS

from ...utils import (describe_reinitialised, drop_reinitialised_keys,
                      strip_prefixes)


@HOOKS.register_module()
class KeypointTransferHook(Hook):
    """Fine-tune from a checkpoint with another keypoint count via
    ``load_from``.

    Drops the checkpoint's entries of the ``reinit`` prefixes (model names;
    default: the last layer of MMPose's ``HeatmapHead``) whose shapes differ
    from the model's, so those layers keep their fresh initialisation, and
    logs each with both shapes. Any other mismatch or missing weight raises
    :class:`~sspose_mm.errors.CheckpointError`. A resume changes nothing.

    Example:
        >>> load_from = 'checkpoints/transpose-r-a4.pth'  # COCO, 17 kpts
        >>> model = dict(head=dict(out_channels=16))      # MPII
        >>> custom_hooks = [dict(type='KeypointTransferHook')]
    """

    priority = 'VERY_HIGH'  # before any hook that reads the weights

    def __init__(self, reinit: Sequence[str] = ('head.final_layer', )):
        self.reinit = tuple(reinit)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        state_dict = checkpoint.get('state_dict', checkpoint)
        # The runner strips this prefix only after the hook.
        strip_prefixes(state_dict)
        dropped = drop_reinitialised_keys(state_dict, model.state_dict(),
                                          self.reinit)
        print_log(describe_reinitialised(dropped), logger='current')

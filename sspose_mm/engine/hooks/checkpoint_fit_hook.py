"""A training run's ``load_from`` loads whole or not at all."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS

from ...errors import CheckpointError
from ...utils import plain_state_dict, require_fit
from .keypoint_transfer_hook import KeypointTransferHook


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Stop before a checkpoint that does not fit the model is loaded.

    mmengine loads ``load_from`` (and a ``--resume`` file) non-strictly, so
    another model's checkpoint leaves random weights with a mere warning.
    This hook refuses it with the tools' one line
    (:func:`~sspose_mm.utils.require_fit`; only the tools, in the API layer,
    also recognise an official checkpoint still to convert). Two cases load
    part of a file: a config with :class:`KeypointTransferHook` (which
    checks the rest itself), and an encoder checkpoint (all keys
    ``backbone.*``, from ``EncoderCheckpointHook``), which must hold exactly
    the model's backbone. A tensor the model adapts as it loads
    (``SSposeConvViT`` resizing ``pos_embed``) fits. ``enable=False`` loads
    as mmengine does (what fits).
    """

    priority = 'HIGHEST'  # before any hook edits the checkpoint

    def __init__(self, enable: bool = True) -> None:
        self.enable = enable

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # Called between reading the file and loading it. Without load_from
        # the run resumes its own work dir's checkpoint.
        path = runner._load_from
        if not self.enable or path is None or any(
                isinstance(hook, KeypointTransferHook)
                for hook in runner.hooks):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        state = plain_state_dict(checkpoint, path)
        # Loaded as the model loads itself, so tensors it adapts fit.
        try:
            loaded = model.load_state_dict(state, strict=False)
        except CheckpointError:
            raise  # the model's own sentence
        except RuntimeError:  # a shape the model cannot take
            require_fit(state, model.state_dict(), path,
                        type(model).__name__)  # raises, describing the file
            raise
        encoder = all(key.startswith('backbone.') for key in state)
        missing = [
            key for key in loaded.missing_keys
            if key.startswith('backbone.') or not encoder
        ]
        if missing or loaded.unexpected_keys:
            require_fit(state, model.state_dict(), path,
                        type(model).__name__)  # raises, describing the file

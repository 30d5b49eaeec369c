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

    mmengine's Runner loads ``load_from`` (and a ``--resume`` file)
    non-strictly: a checkpoint of another model leaves random weights with
    a warning, and training starts from them. This hook refuses it with the
    one line every tool gives (:func:`~sspose_mm.utils.require_fit`; the
    tools also recognise an official checkpoint still to convert, which
    needs the API layer: here the file is described by its keys alone).
    Two named paths load part of a file: a config with
    :class:`~sspose_mm.engine.hooks.KeypointTransferHook` (another keypoint
    count; it checks the rest itself), and an encoder checkpoint (every key
    ``backbone.*``, as ``EncoderCheckpointHook`` writes), which must hold
    exactly the model's backbone while the head keeps its initialisation.
    Shapes are those the model takes: a module that adapts a tensor as it
    loads (``SSposeConvViT`` resizing ``pos_embed`` pretrained at another
    input size) accepts it.

    Args:
        enable (bool): False loads as mmengine does (what fits).
    """

    priority = 'HIGHEST'  # before any hook edits the checkpoint

    def __init__(self, enable: bool = True) -> None:
        self.enable = enable

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        # mmengine calls this between reading the file and loading it into
        # the model. Without a load_from it resumes the work dir's own
        # latest checkpoint, written by this model.
        path = runner._load_from
        if not self.enable or path is None or any(
                isinstance(hook, KeypointTransferHook)
                for hook in runner.hooks):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        state = plain_state_dict(checkpoint, path)
        # Loaded here as the model loads itself, so that tensors its own
        # loading adapts (a position table made for another input size) fit.
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

"""A training run's ``load_from`` loads whole or not at all.

The runtime base names this hook by its module path
(``type='sspose_mm.apis.checkpoint_fit_hook.CheckpointFitHook'``, which
mmengine's registries import), not by a registered name: it describes the
file with :func:`~sspose_mm.apis.loading.check_checkpoint_fits`, which
belongs to the API layer, and ``import sspose_mm`` (the configs'
``custom_imports``) registers only the layers below it.
"""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..engine.hooks import KeypointTransferHook
from .loading import check_checkpoint_fits, fit_problems, unwrap_state_dict


class CheckpointFitHook(Hook):
    """Stop before a checkpoint that does not fit the model is loaded.

    mmengine's Runner loads ``load_from`` (and a ``--resume`` file)
    non-strictly: a checkpoint of another model leaves random weights with
    a warning, and training starts from them. This hook refuses it with the
    one line every tool gives (see
    :func:`~sspose_mm.apis.loading.check_checkpoint_fits`). Two named paths
    load part of a file:

    - a config with :class:`~sspose_mm.engine.hooks.KeypointTransferHook`
      (another keypoint count), which checks the rest itself;
    - an encoder checkpoint (every key ``backbone.*``, as
      :class:`~sspose_mm.engine.hooks.EncoderCheckpointHook` writes),
      which must hold exactly the model's backbone; the head keeps its
      initialisation.

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
        state = unwrap_state_dict(checkpoint, path)
        own = model.state_dict()
        if all(key.startswith('backbone.') for key in state):
            own = {k: v for k, v in own.items() if k.startswith('backbone.')}
        if fit_problems(state, own):
            check_checkpoint_fits(model, path)  # raises, describing the file

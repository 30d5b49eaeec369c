from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS

from ...errors import ConfigError
from ...models.backbones import SHaRPoseViT
from ...models.heads import SHaRPoseHead


@HOOKS.register_module()
class SHaRPoseQualityHook(Hook):
    """Tell SHaRPose's backbone and head the current training epoch.

    Before every training epoch, ``train_epoch`` of the
    :class:`~sspose_mm.models.backbones.SHaRPoseViT` and the
    :class:`~sspose_mm.models.heads.SHaRPoseHead` is set to the 1-based
    epoch number (as the official MMPose 0.x ``ModelSetEpochHook``). The
    head switches its quality loss on once ``train_epoch`` exceeds its
    ``qp_start_epoch``; the backbone gates validation (eval mode) once it
    exceeds its own ``qp_start_epoch``, and never gates training forwards.
    Without this hook (a standalone test) ``train_epoch`` stays None: the
    gate is always on and there is no quality loss.
    """

    def before_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        epoch = runner.epoch + 1
        targets = [
            m for m in model.modules()
            if isinstance(m, (SHaRPoseViT, SHaRPoseHead))
        ]
        if not targets:
            raise ConfigError('SHaRPoseQualityHook is configured but the '
                              f'model ({type(model).__name__}) has no '
                              'SHaRPoseViT backbone or SHaRPoseHead.')
        for module in targets:
            module.train_epoch = epoch
        head = getattr(model, 'head', None)
        if (isinstance(head, SHaRPoseHead) and head.quality_loss_weight > 0
                and epoch == head.qp_start_epoch + 1):
            print_log(
                f'SHaRPose: quality loss (weight '
                f'{head.quality_loss_weight}) on from epoch {epoch}',
                logger='current')

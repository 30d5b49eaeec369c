from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS

from ...errors import ConfigError
from ...models.backbones import SHaRPoseViT
from ...models.heads import SHaRPoseHead


@HOOKS.register_module()
class SHaRPoseQualityHook(Hook):
    """Set ``train_epoch`` of SHaRPose's backbone and head to the 1-based
    epoch before each training epoch (the official ``ModelSetEpochHook``).

    Past its ``qp_start_epoch`` the head adds its quality loss and the
    backbone gates validation forwards (never training ones). Without this
    hook ``train_epoch`` stays None: always gated, no quality loss.
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

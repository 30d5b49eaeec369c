"""Stop training at the first non-finite loss or weight, before it is
checkpointed."""
import os.path as osp
from typing import Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmpose.registry import HOOKS

from ...errors import TrainingDiverged


@HOOKS.register_module()
class NanGuardHook(Hook):
    """Raise :class:`TrainingDiverged` when a loss term is NaN or infinite,
    or when a checkpoint about to be saved holds a non-finite weight.

    The loss check runs after each iteration, before ``CheckpointHook``
    (priority VERY_LOW). A finite loss can still be followed by an update
    that overflows the weights (its loss only shows in the next iteration),
    so the weights are checked once more as each checkpoint is about to be
    written. Either way the diverged weights are never saved and
    ``last_checkpoint`` keeps naming the last good checkpoint, which the
    message gives. All processes agree on the loss verdict (one all-reduce
    of a flag), so every rank stops instead of the others waiting for it in
    the next collective; the weights are the same on every rank.

    Mixed precision (``AmpOptimWrapper``, on CUDA): float16 overflows to inf
    above 65504, and the loss scaler (``torch.amp.GradScaler``) skips every
    update whose gradients are not finite, so a non-finite loss leaves the
    weights as they were. Such an iteration is logged, not fatal; only
    ``max_amp_skips`` of them in a row stop the run, since then the model
    overflows float16 at every step and learns nothing (train it in
    bfloat16). Gradients are all-reduced before the scaler looks at them,
    so all ranks skip together.

    Args:
        max_amp_skips (int): Consecutive non-finite losses tolerated under
            an enabled loss scaler. Defaults to 10: an occasional batch
            that overflows passes, a model that always does stops.
        enable (bool): Switch the hook off with False (as MMPose's
            ``PoseVisualizationHook``): mmengine's Runner removes only its
            own default hooks when a config sets them to None.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, max_amp_skips: int = 10, enable: bool = True) -> None:
        self.max_amp_skips = max_amp_skips
        self.enable = enable
        self.amp_skips = 0

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not self.enable:
            return
        losses = {
            k: v
            for k, v in (outputs or {}).items()
            if k.startswith('loss') and isinstance(v, torch.Tensor)
        }
        local_bad = not all(torch.isfinite(v).all() for v in losses.values())
        bad = torch.tensor([float(local_bad)])
        all_reduce(bad, op='max')
        if bad.item() == 0:
            self.amp_skips = 0
            return
        terms = ', '.join(f'{k}={v.item():.4g}' if v.numel() == 1 else k
                          for k, v in losses.items())
        where = (f'iteration {runner.iter + 1} (epoch {runner.epoch + 1}, '
                 f'batch {batch_idx + 1})')
        scaler = getattr(
            getattr(runner, 'optim_wrapper', None), 'loss_scaler', None)
        if scaler is not None and scaler.is_enabled():
            self.amp_skips += 1
            if self.amp_skips < self.max_amp_skips:
                print_log(
                    f'The loss is not finite at {where} ({terms}): a mixed '
                    'precision overflow; the loss scaler skipped this update '
                    f'(scale now {scaler.get_scale():g}).',
                    logger='current',
                    level=30)
                return
            raise TrainingDiverged(
                f'the loss is not finite in {self.amp_skips} iterations in a '
                f'row, up to {where} ({terms}): the model overflows float16 '
                'at every step and the loss scaler skipped every update. '
                'Train it in bfloat16 (--amp --cfg-options optim_wrapper.'
                'dtype=bfloat16, GPUs of compute capability >= 8.0) or '
                f'float32 (without --amp); {self._last_good(runner)}')
        raise TrainingDiverged(
            f'the loss is not finite at {where} on '
            f'{"this" if local_bad else "another"} process: {terms}. '
            'Nothing was saved after it; '
            f'{self._last_good(runner)} Lower the learning rate or check the '
            'data, then resume with --resume.')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.enable:
            return
        bad = [
            name for name, value in checkpoint.get('state_dict', {}).items()
            if torch.is_tensor(value) and value.is_floating_point()
            and not torch.isfinite(value).all()
        ]
        if not bad:
            return
        shown = ', '.join(
            bad[:3]) + (f' and {len(bad) - 3} more' if len(bad) > 3 else '')
        raise TrainingDiverged(
            'the weights are not finite after iteration '
            f'{checkpoint["meta"]["iter"]} (epoch {runner.epoch + 1}) '
            f'although the loss was: {shown}. '
            'This checkpoint was not saved; '
            f'{self._last_good(runner)} Lower the learning rate (or clip '
            'gradients: optim_wrapper.clip_grad), then resume with --resume.')

    @staticmethod
    def _last_good(runner) -> str:
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isfile(pointer):
            with open(pointer) as f:
                return f'the last good checkpoint is {f.read().strip()}.'
        return 'no checkpoint had been saved yet.'

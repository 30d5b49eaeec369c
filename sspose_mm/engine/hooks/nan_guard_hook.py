"""Stop training at the first non-finite loss or weight, before it is
checkpointed."""
import os.path as osp
from typing import Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook

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
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        losses = {k: v for k, v in (outputs or {}).items()
                  if k.startswith('loss') and isinstance(v, torch.Tensor)}
        local_bad = not all(torch.isfinite(v).all() for v in losses.values())
        bad = torch.tensor([float(local_bad)])
        all_reduce(bad, op='max')
        if bad.item() == 0:
            return
        terms = ', '.join(f'{k}={v.item():.4g}' if v.numel() == 1 else k
                          for k, v in losses.items())
        raise TrainingDiverged(
            f'the loss is not finite at iteration {runner.iter + 1} (epoch '
            f'{runner.epoch + 1}, batch {batch_idx + 1}) on '
            f'{"this" if local_bad else "another"} process: {terms}. '
            'Nothing was saved after it; '
            f'{self._last_good(runner)} Lower the learning rate or check the '
            'data, then resume with --resume.')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = [name for name, value in checkpoint.get('state_dict', {}).items()
               if torch.is_tensor(value) and value.is_floating_point()
               and not torch.isfinite(value).all()]
        if not bad:
            return
        shown = ', '.join(bad[:3]) + (f' and {len(bad) - 3} more'
                                      if len(bad) > 3 else '')
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

"""Stop training at the first non-finite loss or weight, before a save."""
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

    The loss is checked after each iteration, before ``CheckpointHook``; the
    weights before each save (a finite loss can precede an update that
    overflows them). So diverged weights are never saved and
    ``last_checkpoint``, which the message names, stays the last good one.
    All ranks agree on the loss verdict (one all-reduce), so none waits for
    a stopped one. Under an enabled loss scaler (``AmpOptimWrapper``) a
    non-finite loss is a float16 overflow whose update was skipped on every
    rank: it is logged, and only ``max_amp_skips`` in a row (the model
    overflows at every step: train it in bfloat16) stop the run.
    ``enable=False`` switches the hook off (``package_runtime.py``).
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

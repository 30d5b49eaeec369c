"""Encoder-only checkpoints of a pretraining run, for pose fine-tuning."""
import os.path as osp
from typing import Optional

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import save_checkpoint
from mmpose.registry import HOOKS

from ... import fileio  # noqa: F401  (registers 'atomic_local')
from ...errors import ConfigError


@HOOKS.register_module()
class EncoderCheckpointHook(Hook):
    """Save the pretrained encoder as a checkpoint a pose config loads.

    Every ``interval`` epochs (iterations) and after the last, atomically
    writes ``{'state_dict': {'backbone.<name>': tensor}, 'meta': {'epoch',
    'iter', 'source'}}`` to ``<out_dir or work_dir>/encoder_epoch_<n>.pth``
    (``_iter_``), keeping the model's keys that start with ``prefix``. Load
    it with ``backbone.init_cfg=dict(type='Pretrained', checkpoint=...,
    prefix='backbone.')``, or ``load_from`` plus ``backbone.init_cfg=None``
    (weights are initialised before ``load_from``, so a default
    ``init_cfg`` naming a missing file stops the run first).
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 1,
                 by_epoch: bool = True,
                 prefix: str = 'backbone.',
                 out_dir: Optional[str] = None) -> None:
        if interval < 1:
            raise ConfigError(f'EncoderCheckpointHook.interval must be >= 1,'
                              f' got {interval}')
        self.interval = interval
        self.by_epoch = by_epoch
        self.prefix = prefix
        self.out_dir = out_dir

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and (self.every_n_epochs(runner, self.interval)
                              or self.is_last_train_epoch(runner)):
            # The loop counts the epoch after this hook, iterations before.
            self.save(runner, runner.epoch + 1, runner.iter)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if not self.by_epoch and (self.every_n_train_iters(
                runner, self.interval) or self.is_last_train_iter(runner)):
            self.save(runner, runner.epoch, runner.iter + 1)

    @master_only
    def save(self, runner, epoch: int, iteration: int) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        state_dict = {
            k: v.detach().cpu().clone()
            for k, v in model.state_dict().items() if k.startswith(self.prefix)
        }
        if not state_dict:
            raise ConfigError(f'EncoderCheckpointHook: the model has no '
                              f'parameters named {self.prefix}*')
        checkpoint = dict(
            state_dict=state_dict,
            meta=dict(
                epoch=epoch,
                iter=iteration,
                source=osp.basename(runner.work_dir)))
        filename = (f'encoder_epoch_{epoch}.pth'
                    if self.by_epoch else f'encoder_iter_{iteration}.pth')
        path = osp.join(self.out_dir or runner.work_dir, filename)
        save_checkpoint(
            checkpoint, path, backend_args=dict(backend='atomic_local'))
        runner.logger.info(f'encoder checkpoint saved to {path}')

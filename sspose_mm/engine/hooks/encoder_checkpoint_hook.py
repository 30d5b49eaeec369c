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

    Writes ``{'state_dict': {'backbone.<name>': tensor, ...}, 'meta':
    {'epoch', 'iter', 'source'}}`` (tensors and plain types only, written
    atomically) to ``<work_dir>/encoder_epoch_<n>.pth`` (or ``_iter_``)
    every ``interval`` epochs (iterations) and after the last one. The keys
    are the pose model's own, so a fine-tuning config uses the file with
    ``backbone.init_cfg=dict(type='Pretrained', checkpoint=...,
    prefix='backbone.')`` or with ``load_from`` together with
    ``model.backbone.init_cfg=None`` (mmengine initialises weights before
    it reads ``load_from``, so a default ``init_cfg`` naming a file that
    does not exist stops the run first; the head is reported missing, as
    it must be).

    Args:
        interval (int): Save every this many epochs (iterations).
        by_epoch (bool): Count epochs (True) or iterations.
        prefix (str): Keys of the model's state dict to keep (kept as they
            are, prefix included).
        out_dir (str, optional): Folder; defaults to the runner's work dir.
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
            # The loop counts this epoch after the hook, its iterations
            # before it.
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
        """Write the checkpoint after ``epoch`` epochs / ``iteration``
        iterations."""
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

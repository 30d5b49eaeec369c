"""Resume a killed run so that it ends exactly where an uninterrupted one ends.

mmengine's ``EpochBasedTrainLoop`` trains a resumed epoch's first batches
again, and no checkpoint holds the random states. :class:`ExactResumeHook`
saves every process's python, numpy and torch states and seeds each epoch
from ``(seed, epoch, rank)``, independent of what ran before (validation, a
resume); :class:`ExactResumeEpochBasedTrainLoop` loads the batches already
trained on without training them (dataloader workers, re-seeded each epoch,
replay the same stream), then restores the states. ``persistent_workers``
keep states no checkpoint holds: a warning says the resume then differs.
"""
import random
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from mmengine.utils import apply_to
from mmpose.registry import HOOKS, LOOPS


def get_rng_state() -> dict:
    """This process's python, numpy and torch random states as tensors."""
    version, python_state, gauss_next = random.getstate()
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = dict(
        python=torch.tensor(python_state, dtype=torch.int64),
        python_version=version,
        python_gauss_next=gauss_next,
        numpy=torch.from_numpy(keys.astype(np.int64)),
        numpy_kind=kind,
        numpy_pos=int(pos),
        numpy_has_gauss=int(has_gauss),
        numpy_cached_gaussian=float(cached_gaussian),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`get_rng_state`; tensors may be on any device (on a
    GPU ``Runner.resume`` loads checkpoints onto CUDA)."""
    state = apply_to(state, torch.is_tensor, lambda tensor: tensor.cpu())
    random.setstate((state['python_version'], tuple(state['python'].tolist()),
                     state['python_gauss_next']))
    np.random.set_state(
        (state['numpy_kind'], state['numpy'].numpy().astype(np.uint32),
         state['numpy_pos'], state['numpy_has_gauss'],
         state['numpy_cached_gaussian']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def seed_everything(seed: int, epoch: int, rank: int = 0) -> None:
    """Seed python, numpy and torch (CPU and CUDA) from ``(seed, epoch)``.

    Each rank differs (equal seeds would repeat MAE masks, DropPath and
    augmentations in each process's share of the batch): rank ``r`` takes
    word ``r`` of the seed sequence, so rank 0 draws what one process draws.
    """
    epoch_seed = int(
        np.random.SeedSequence([seed, epoch]).generate_state(rank + 1)[rank])
    random.seed(epoch_seed)
    np.random.seed(epoch_seed)
    torch.manual_seed(epoch_seed)


def _saves_after_this_iter(hook: CheckpointHook, runner) -> bool:
    """``CheckpointHook.after_train_iter``'s condition for saving."""
    return not hook.by_epoch and (
        hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or
        (hook.save_last and hook.is_last_train_iter(runner)))


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Seed each epoch (:func:`seed_everything`); save ``rng_states``, one per
    process (gathered only for checkpoints inside an epoch, the ones that
    need them), restored on a resume with as many processes.
    ``enable=False`` switches the hook off (``package_runtime.py``).
    """

    priority = 'LOW'  # before PlainCheckpointHook (VERY_LOW) converts types

    def __init__(self, enable: bool = True) -> None:
        self.enable = enable
        self.pending_state: Optional[dict] = None
        self.gathered: Tuple[int, List[dict]] = (-1, [])

    def before_train_epoch(self, runner) -> None:
        if not self.enable:
            return
        seed_everything(runner.seed, runner.epoch, get_rank())
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            # IterBasedTrainLoop: one epoch for the whole run, entered once.
            self.restore_pending(runner)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if not self.enable:
            return
        # Only rank 0 saves, so every rank gathers the states here when a
        # CheckpointHook (VERY_LOW, after this hook) saves next.
        if get_world_size() > 1 and any(
                _saves_after_this_iter(hook, runner)
                for hook in runner.hooks if isinstance(hook, CheckpointHook)):
            self.gathered = (runner.iter + 1,
                             all_gather_object(get_rng_state()))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if not self.enable:
            return
        if get_world_size() == 1:
            checkpoint['rng_states'] = [get_rng_state()]
        elif self.gathered[0] == checkpoint['meta']['iter']:
            checkpoint['rng_states'] = self.gathered[1]
        # Else an epoch-end or best checkpoint: its resume seeds an epoch.

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get('rng_states')
        # Only a resume continues the run; load_from starts a new one.
        if states is None or not runner._resume or not self.enable:
            return
        if len(states) != get_world_size():
            print_log(
                f'The checkpoint holds the random states of {len(states)} '
                f'processes but {get_world_size()} run now: augmentations and '
                'dropout continue with other random numbers than an '
                'uninterrupted run would.',
                logger='current',
                level=30)
            return
        self.pending_state = states[get_rank()]
        loader = runner.train_loop.dataloader
        if loader.num_workers > 0 and loader.persistent_workers:
            print_log(
                'train_dataloader.persistent_workers=True: its worker '
                'processes keep random states no checkpoint holds, so the '
                'resumed run draws other augmentations than an uninterrupted '
                'one (train with --deterministic, or persistent_workers=False,'
                ' for exact resumes).',
                logger='current',
                level=30)

    def restore_pending(self, runner) -> None:
        """Restore the resumed random states (once, after skipping data)."""
        if self.pending_state is not None:
            set_rng_state(self.pending_state)
            self.pending_state = None


@LOOPS.register_module()
class ExactResumeEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that resumes mid-epoch where it stopped: after
    a checkpoint saved inside an epoch, the batches trained on before it are
    loaded but not trained on again, and batch indices continue."""

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done = self._iter - self._epoch * len(self.dataloader)
        if done > 0:
            print_log(
                f'Resuming inside epoch {self._epoch + 1}: skipping '
                f'its {done} batches already trained on.',
                logger='current')
        if done < len(self.dataloader):
            for idx, data_batch in enumerate(self.dataloader):
                if idx == done - 1:
                    self._restore_rng_state()
                if idx >= done:
                    self.run_iter(idx, data_batch)
        else:  # saved after the epoch's last batch, before its end hooks
            self._restore_rng_state()
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def _restore_rng_state(self) -> None:
        for hook in self.runner.hooks:
            if isinstance(hook, ExactResumeHook):
                hook.restore_pending(self.runner)

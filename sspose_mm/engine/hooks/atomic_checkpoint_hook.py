"""mmengine's ``CheckpointHook`` with an all-or-nothing ``last_checkpoint``."""
import os.path as osp
import tempfile
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmpose.registry import HOOKS

from ...fileio import atomic_write


class _WorkDirElsewhere:
    """The runner, except that ``work_dir`` is another folder."""

    def __init__(self, runner, work_dir: str) -> None:
        self._runner = runner
        self.work_dir = work_dir

    def __getattr__(self, name: str):
        return getattr(self._runner, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same options) whose checkpoints and
    ``last_checkpoint`` are never empty or cut.

    Checkpoints go through the ``'atomic_local'`` backend unless
    ``backend_args`` or a remote ``out_dir`` names another. mmengine 0.10.7
    writes ``last_checkpoint`` with a plain ``open(..., 'w')`` that a kill
    can leave empty: here it writes into a scratch folder (only its
    ``runner.work_dir`` differs) and :func:`atomic_write` replaces the real
    pointer, so it always names a complete checkpoint.
    """

    def __init__(self,
                 *args,
                 out_dir: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        local = out_dir is None or '://' not in str(out_dir)
        if (local and backend_args is None
                and kwargs.get('file_client_args') is None):
            backend_args = dict(backend='atomic_local')
        super().__init__(
            *args, out_dir=out_dir, backend_args=backend_args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            super()._save_checkpoint_with_step(
                _WorkDirElsewhere(runner, scratch), step, meta)
        if is_main_process():
            atomic_write(
                osp.join(runner.work_dir, 'last_checkpoint'),
                self.last_ckpt.encode())

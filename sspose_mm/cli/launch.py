"""Config handling shared by ``tools/train.py`` and ``tools/test.py``."""
import argparse
import glob
import json
import logging
import os
import os.path as osp
import re
import zipfile
from contextlib import contextmanager
from typing import Any, Dict, Iterable, Optional, Tuple

from mmengine.config import Config, DictAction
from mmengine.logging import print_log

from ..env import setup_distributed
from ..errors import ConfigError, DataError
from .checks import (check_cfg_options, check_config, check_module_types,
                     check_switched_off_hooks, check_value_types,
                     find_malformed_json, syntax_error_in)


def parse_runner_arguments(parser: argparse.ArgumentParser,
                           show_what: str) -> argparse.Namespace:
    """Add the options MMPose's train and test tools share, then parse."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--show-dir', help=f'save {show_what} pictures here')
    parser.add_argument(
        '--show', action='store_true', help=f'display {show_what} pictures')
    parser.add_argument(
        '--interval', type=int, default=1, help='visualize every n-th sample')
    parser.add_argument(
        '--wait-time', type=float, default=1, help='seconds per shown picture')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value (e.g. '
        'train_dataloader.batch_size=8)')
    parser.add_argument(
        '--launcher',
        default='none',
        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def read_config(path: str,
                cfg_options: Optional[Dict[str, Any]] = None,
                work_dir: Optional[str] = None) -> Config:
    """Read a config with ``--work-dir`` (default ``work_dirs/<name>``) and
    ``--cfg-options`` (here so that tool options read what will run, and
    again last in :func:`finish_config`)."""
    if not osp.isfile(path):
        raise ConfigError(f'config file "{path}" does not exist.')
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as error:
        message = syntax_error_in(path)
        if message is None:
            raise
        raise ConfigError(message) from error
    check_cfg_options(cfg, cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def finish_config(cfg: Config,
                  cfg_options: Optional[Dict[str, Any]] = None,
                  launcher: str = 'none',
                  phases: Iterable[str] = ()) -> Config:
    """Merge ``--cfg-options`` last, over the tool's own options as in MMPose
    (but not into a section a tool option set to None: mmengine cannot),
    check what will run (:func:`check_config` for the dataloaders of
    ``phases``), prepare the launcher (docs/architecture.md)."""
    if cfg_options:
        cfg.merge_from_dict({
            key: value
            for key, value in cfg_options.items()
            if '.' not in key or cfg.get(key.split('.')[0], {}) is not None
        })
    check_module_types(cfg)
    check_value_types(cfg, cfg_options)
    check_switched_off_hooks(cfg)
    check_config(cfg, phases)
    keep_no_workers_alive(cfg)
    setup_distributed(cfg, launcher)
    return cfg


def load_config(path: str,
                cfg_options: Optional[Dict[str, Any]] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none',
                phases: Iterable[str] = ()) -> Config:
    """:func:`read_config` then :func:`finish_config`."""
    return finish_config(
        read_config(path, cfg_options, work_dir), cfg_options, launcher,
        phases)


def keep_no_workers_alive(cfg: Config) -> None:
    """``num_workers=0`` gets ``persistent_workers=False`` and a warning, not
    torch's ValueError after the model is built (as in MMPose's tools)."""
    for phase in ('train', 'val', 'test'):
        loader = cfg.get(f'{phase}_dataloader')
        if loader and loader.get(
                'persistent_workers') and not loader.get('num_workers'):
            loader.persistent_workers = False
            print_log(
                f'{phase}_dataloader.num_workers=0: no worker processes, so '
                'persistent_workers=True does not apply (set to False).',
                logger='current',
                level=logging.WARNING)


def enable_visualization(cfg: Config, show_dir: Optional[str], show: bool,
                         interval: int, wait_time: float) -> None:
    """Turn on MMPose's ``PoseVisualizationHook`` as its tools do."""
    if not (show or show_dir):
        return
    hooks = cfg.get('default_hooks', {})
    if 'visualization' not in hooks:
        raise ConfigError('--show/--show-dir need a PoseVisualizationHook in '
                          'default_hooks.visualization of the config.')
    hooks.visualization.update(
        enable=True, show=show, out_dir=show_dir, interval=interval)
    if show:  # as MMPose's tools: the config's wait_time stays otherwise
        hooks.visualization.wait_time = wait_time


def make_deterministic(cfg: Config) -> None:
    """``--deterministic``: a seed (the config's, else 0), deterministic
    algorithms, and workers recreated every epoch (persistent ones carry
    random states no checkpoint holds; mmengine seeds fresh ones)."""
    randomness = dict(cfg.get('randomness') or {}, deterministic=True)
    if randomness.get('seed') is None:
        randomness['seed'] = 0
    cfg.randomness = randomness
    if cfg.get('train_dataloader'):
        cfg.train_dataloader.persistent_workers = False
    # cuBLAS needs this before CUDA starts to pick deterministic kernels.
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')


# The names CheckpointHook gives the checkpoints a run resumes from (its
# default filename_tmpl); best_* files hold no optimizer state.
_RESUMABLE = re.compile(r'(epoch|iter)_\d+\.pth')


def _complete(path: str) -> bool:
    """Whether ``path`` is a whole checkpoint (a zip, whose end is cut)."""
    return osp.isfile(path) and zipfile.is_zipfile(path)


def find_resume_checkpoint(work_dir: str
                           ) -> Tuple[Optional[str], Optional[str]]:
    """The checkpoint ``--resume`` (without a file) continues from, and a
    sentence when ``last_checkpoint`` is missing, empty (plain mmengine's,
    after a kill), gone or incomplete: then the newest complete
    ``epoch_N.pth`` / ``iter_N.pth``; with none, None: start afresh."""
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(pointer):
        reason = f'there is no {pointer}'
    else:
        with open(pointer) as f:
            named = f.read().strip()
        if _complete(named):
            return named, None
        reason = (f'{pointer} is empty'
                  if not named else f'{pointer} names {named}, which ' +
                  ('is incomplete' if osp.exists(named) else 'does not exist'))
    found = [
        path for path in glob.glob(osp.join(glob.escape(work_dir), '*.pth'))
        if _RESUMABLE.fullmatch(osp.basename(path)) and _complete(path)
    ]
    if not found:
        return None, (f'--resume: {reason} and no complete checkpoint '
                      '(epoch_N.pth, iter_N.pth) is in the work dir; '
                      'training starts from the beginning.')
    newest = max(found, key=lambda path: (osp.getmtime(path), path))
    return newest, (f'--resume: {reason}; resuming from the newest complete '
                    f'checkpoint in the work dir, {newest}.')


@contextmanager
def naming_malformed_json(cfg: Config):
    """Turn a JSON error from deep inside a dataset into a :class:`DataError`
    naming the file (mmengine's builder even changes the error's type)."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - re-raised unless JSON
        cause = error
        while cause is not None and not isinstance(cause,
                                                   json.JSONDecodeError):
            cause = cause.__cause__ or cause.__context__
        message = find_malformed_json(cfg) if cause is not None else None
        if message is None:
            raise
        raise DataError(message) from error

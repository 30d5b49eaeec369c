"""Config handling shared by ``tools/train.py`` and ``tools/test.py``."""
import argparse
import os
import os.path as osp
from typing import Any, Dict, Iterable, Optional

from mmengine.config import Config, DictAction

from ..compat import setup_distributed
from ..errors import ConfigError
from .config_checks import check_cfg_options, check_config


def add_runner_arguments(parser: argparse.ArgumentParser,
                         show_what: str) -> None:
    """The options MMPose's train and test tools share."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--show-dir', help=f'save {show_what} pictures here')
    parser.add_argument('--show', action='store_true',
                        help=f'show {show_what} pictures in a window')
    parser.add_argument('--interval', type=int, default=1,
                        help='visualize every n-th sample')
    parser.add_argument('--wait-time', type=float, default=1,
                        help='seconds each shown picture stays')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, key=value (e.g. '
        'train_dataloader.batch_size=8)')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_arguments(
        parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK.
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(path: str,
                cfg_options: Optional[Dict[str, Any]] = None,
                work_dir: Optional[str] = None,
                launcher: str = 'none',
                phases: Iterable[str] = ()) -> Config:
    """Read a config, apply ``--cfg-options``, check it, prepare the launcher.

    ``work_dir`` defaults to ``work_dirs/<config name>`` as in MMPose. The
    dataloaders of ``phases`` are checked for missing files and keypoint
    counts (see :func:`check_config`).
    """
    if not osp.isfile(path):
        raise ConfigError(f'config file "{path}" does not exist.')
    cfg = Config.fromfile(path)
    check_cfg_options(cfg, cfg_options)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    check_config(cfg, phases)
    setup_distributed(cfg, launcher)
    return cfg


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
        enable=True, show=show, wait_time=wait_time, out_dir=show_dir,
        interval=interval)

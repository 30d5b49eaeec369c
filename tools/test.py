"""Evaluate a checkpoint: MMPose's ``tools/test.py`` with this package's
checks; runs on CPU (gloo) without CUDA.

The checkpoint is loaded with ``torch.load(weights_only=True)``. Pass
``none`` as checkpoint to evaluate the freshly initialised model (the
untrained baseline).
"""
import argparse
import json
import os

import sspose_mm  # noqa: F401  (environment fixes before mmpose)
from mmengine.config import DictAction
from mmengine.runner import Runner

from sspose_mm.apis import enable_visualization, load_config
from sspose_mm.errors import ConfigError, run_cli


def parse_args():
    parser = argparse.ArgumentParser(description='Evaluate a pose model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint',
                        help='checkpoint file, or "none" for the untrained '
                        'model')
    parser.add_argument('--work-dir', help='the dir to save logs')
    parser.add_argument('--out', help='write the metrics to this json file')
    parser.add_argument('--show-dir', help='save prediction pictures here')
    parser.add_argument('--show', action='store_true',
                        help='show prediction pictures in a window')
    parser.add_argument('--interval', type=int, default=1,
                        help='visualize every n-th sample')
    parser.add_argument('--wait-time', type=float, default=1,
                        help='seconds each shown picture stays')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm',
                                               'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher, ['test'])
    untrained = args.checkpoint.lower() == 'none'
    if not untrained and not os.path.isfile(args.checkpoint):
        raise ConfigError(f'checkpoint "{args.checkpoint}" does not exist.')
    cfg.load_from = None if untrained else args.checkpoint
    enable_visualization(cfg, args.show_dir, args.show, args.interval,
                         args.wait_time)
    runner = Runner.from_cfg(cfg)
    if untrained:
        runner.model.init_weights()
    metrics = runner.test()
    if args.out and runner.rank == 0:
        with open(args.out, 'w') as f:
            json.dump({k: float(v) for k, v in metrics.items()}, f, indent=2)


if __name__ == '__main__':
    run_cli(main)

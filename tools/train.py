"""Train a pose model: MMPose's ``tools/train.py`` with this package's checks.

Runs on CUDA as usual and, without CUDA, on CPU (gloo for
``--launcher pytorch``). Files a config needs are checked before anything
starts; user errors end with one line instead of a traceback.
"""
import argparse
import os

import sspose_mm  # noqa: F401  (environment fixes before mmpose)
from mmengine.config import DictAction
from mmengine.runner import Runner
from mmengine.runner.checkpoint import find_latest_checkpoint

from sspose_mm.apis import enable_visualization, load_config
from sspose_mm.compat import trust_checkpoint
from sspose_mm.errors import ConfigError, run_cli


def parse_args():
    parser = argparse.ArgumentParser(description='Train a pose model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a value from the '
        'latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (CUDA)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual total batch size')
    parser.add_argument('--show-dir', help='save validation pictures here')
    parser.add_argument('--show', action='store_true',
                        help='show validation pictures in a window')
    parser.add_argument('--interval', type=int, default=1,
                        help='visualize every n-th sample')
    parser.add_argument('--wait-time', type=float, default=1,
                        help='seconds each shown picture stays')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, key=value (e.g. '
        'train_dataloader.batch_size=8)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm',
                                               'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main():
    args = parse_args()
    phases = ['train'] if args.no_validate else ['train', 'val']
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.launcher, phases)
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_type not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ConfigError(f'--amp does not work with the optimizer '
                              f'wrapper {optim_type} of this config.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume is not None:
        resume_from = (find_latest_checkpoint(cfg.work_dir)
                       if args.resume == 'auto' else args.resume)
        if resume_from is not None:
            if not os.path.isfile(resume_from):
                raise ConfigError(f'--resume: checkpoint "{resume_from}" '
                                  'does not exist.')
            # Resuming is the user's explicit trust in their own run's file.
            trust_checkpoint(resume_from)
        cfg.resume = True
        cfg.load_from = resume_from
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    enable_visualization(cfg, args.show_dir, args.show, args.interval,
                         args.wait_time)
    Runner.from_cfg(cfg).train()


if __name__ == '__main__':
    run_cli(main)

"""Train a pose model: MMPose's ``tools/train.py`` with this package's checks
(of the files a config needs, before anything starts; user errors end with
one line). Without CUDA it runs on the CPU (gloo for ``--launcher pytorch``).
"""
import sspose_mm  # noqa: F401  isort: skip (mmpose importable first)
import argparse
import logging
import os

import torch
from mmengine.logging import print_log
from mmengine.runner import Runner

from sspose_mm.cli import (enable_visualization, find_resume_checkpoint,
                           finish_config, make_deterministic,
                           naming_malformed_json, parse_runner_arguments,
                           read_config, run_cli)
from sspose_mm.errors import ConfigError
from sspose_mm.fileio import trust_checkpoint


def parse_args():
    parser = argparse.ArgumentParser(description='Train a pose model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint, or without a value from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='with --resume: also read a checkpoint that holds pickled Python '
        'objects (one written without this package\'s PlainCheckpointHook, '
        'e.g. by plain MMPose). Unpickling can run code: only for your own '
        'files')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision (CUDA)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by the actual total batch size')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='bit-identical runs: fixed seed (the config\'s, else 0), '
        'deterministic algorithms, workers re-seeded every epoch')
    return parse_runner_arguments(parser, 'validation')


def main():
    args = parse_args()
    phases = ['train'] if args.no_validate else ['train', 'val']
    cfg = read_config(args.config, args.cfg_options, args.work_dir)
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        if not torch.cuda.is_available():
            raise ConfigError('--amp (mixed precision) needs CUDA; without it '
                              'training runs in float32.')
        optim_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_type not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ConfigError(f'--amp does not work with the optimizer '
                              f'wrapper {optim_type} of this config.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.trust_checkpoint and args.resume is None:
        raise ConfigError('--trust-checkpoint only applies to --resume.')
    resume_from = args.resume
    if resume_from == 'auto':
        resume_from, note = find_resume_checkpoint(cfg.work_dir)
        if note:
            print_log(note, logger='current', level=logging.WARNING)
    if resume_from is not None:
        if not os.path.isfile(resume_from):
            raise ConfigError(f'--resume: checkpoint "{resume_from}" '
                              'does not exist.')
        if args.trust_checkpoint:
            trust_checkpoint(resume_from)
        cfg.resume = True
        cfg.load_from = resume_from
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    enable_visualization(cfg, args.show_dir, args.show, args.interval,
                         args.wait_time)
    finish_config(cfg, args.cfg_options, args.launcher, phases)
    if args.deterministic:
        # After the user's --cfg-options: bit-identical runs are what was
        # asked for, and persistent workers (an option) would break them.
        make_deterministic(cfg)
    with naming_malformed_json(cfg):
        Runner.from_cfg(cfg).train()


if __name__ == '__main__':
    run_cli(main)

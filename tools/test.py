"""Evaluate a checkpoint (read with ``weights_only=True``; ``none``: the
untrained model): MMPose's ``tools/test.py`` with this package's checks;
runs on CPU (gloo) without CUDA."""
import sspose_mm  # noqa: F401  isort: skip (mmpose importable first)
import argparse
import os

from mmengine.dist import broadcast
from mmengine.fileio import dump
from mmengine.runner import Runner

from sspose_mm.apis.fast_inference import (model_input_size,
                                           prepare_for_inference)
from sspose_mm.apis.loading import check_checkpoint_fits, is_untrained
from sspose_mm.cli import (enable_visualization, finish_config,
                           naming_malformed_json, parse_runner_arguments,
                           read_config, run_cli)
from sspose_mm.errors import ConfigError


def parse_args():
    parser = argparse.ArgumentParser(description='Evaluate a pose model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint',
        help='checkpoint file, or "none" for the untrained model')
    parser.add_argument('--out', help='write the metrics to this json file')
    parser.add_argument(
        '--fast',
        action='store_true',
        help='fast inference path: batch norms folded, channels-last (see '
        'docs/speed.md)')
    return parse_runner_arguments(parser, 'prediction')


def main():
    args = parse_args()
    cfg = read_config(args.config, args.cfg_options, args.work_dir)
    untrained = is_untrained(args.checkpoint)
    if not untrained and not os.path.isfile(args.checkpoint):
        raise ConfigError(f'checkpoint "{args.checkpoint}" does not exist.')
    cfg.load_from = None if untrained else args.checkpoint
    enable_visualization(cfg, args.show_dir, args.show, args.interval,
                         args.wait_time)
    finish_config(cfg, args.cfg_options, args.launcher, ['test'])
    runner = Runner.from_cfg(cfg)
    model = getattr(runner.model, 'module', runner.model)  # inside DDP
    if untrained:
        model.init_weights()
        # Every process must evaluate the same random model.
        for tensor in model.state_dict().values():
            broadcast(tensor)
    else:
        check_checkpoint_fits(model, args.checkpoint)
    if args.fast:
        runner.load_or_resume()  # fold the loaded weights, not random ones
        prepare_for_inference(model, model_input_size(model, cfg))
    with naming_malformed_json(cfg):
        metrics = runner.test()
    if args.out and runner.rank == 0:
        scores = {k: float(v) for k, v in metrics.items()}
        dump(scores, args.out, file_format='json', indent=2)


if __name__ == '__main__':
    run_cli(main)

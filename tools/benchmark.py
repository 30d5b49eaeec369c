"""Measure a model's inference speed (and more, per suite) on this machine.

    python tools/benchmark.py CONFIG [--checkpoint CKPT] [--suite NAME ...]
        [--batch 8] [--threads T] [--input HxW] [--repeat 3] [--json OUT]
        [--compile] [--no-steps]

Runs each chosen suite (default: speed) on the model of CONFIG (random
weights unless --checkpoint is given: timings do not depend on the weights)
and prints a report; --json writes it for records. --list shows the suites.
"""
import sspose_mm  # noqa: F401  isort: skip (mmpose importable first)
import argparse
import sys
from typing import List, Optional

import torch

from sspose_mm.benchmarks.core import format_suite_list, parse_size, run_suites
from sspose_mm.cli import run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.split('\n')[2:]))
    parser.add_argument('config', nargs='?', help='model config')
    parser.add_argument('--checkpoint', help='weights (default: random)')
    parser.add_argument(
        '--suite',
        nargs='+',
        default=['speed'],
        help='suites to run (default: speed)')
    counts = (('batch', 8, 'crops per forward pass'),
              ('threads', torch.get_num_threads(), 'torch CPU threads'),
              ('repeat', 3, 'timed calls per measurement, median reported'))
    for name, default, text in counts:
        parser.add_argument(
            f'--{name}',
            type=int,
            default=default,
            help=f'{text} (default: %(default)s)')
    parser.add_argument(
        '--input',
        type=parse_size,
        metavar='HxW',
        help="input size (default: the config's)")
    parser.add_argument(
        '--compile',
        action='store_true',
        help='speed: also time the fast path with torch.compile')
    parser.add_argument(
        '--no-steps',
        dest='steps',
        action='store_false',
        help='speed: skip the step-by-step breakdown')
    parser.add_argument('--json', metavar='OUT', help='write the report here')
    parser.add_argument(
        '--list', action='store_true', help='list the suites and exit')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.list:
        print(format_suite_list())
        return
    report = run_suites(args)
    if args.json:
        report.dump_json(args.json)
        print(f'\nreport written to {args.json}', file=sys.stderr)


if __name__ == '__main__':
    run_cli(main)

"""Convert an official checkpoint into an MMPose checkpoint.

    python tools/convert_ckpt.py tp_r_256x192_enc4_d256_h1024_mh8.pth \
        checkpoints/transpose-r-a4_official.pth

See :func:`sspose_mm.apis.convert_checkpoint`: nothing in the input runs
unless --trust-checkpoint, and an unknown or missing key stops the
conversion with the list of them.
"""
import sspose_mm  # noqa: F401  isort: skip (mmpose importable first)
import argparse

from sspose_mm.apis import CHECKPOINT_LAYOUTS, convert_checkpoint
from sspose_mm.cli import run_cli


def parse_args() -> argparse.Namespace:
    layouts = '; '.join(
        f'{name}: {layout.description}'
        for name, layout in CHECKPOINT_LAYOUTS.module_dict.items())
    parser = argparse.ArgumentParser(
        description='Convert an official checkpoint into an MMPose one.')
    parser.add_argument('input', help='official checkpoint (.pth)')
    parser.add_argument('output', help='converted checkpoint to write')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='unpickle the input in full although it holds Python objects '
        '(they can run code: only for a file you trust)')
    parser.add_argument(
        '--layout',
        default='auto',
        choices=['auto', *CHECKPOINT_LAYOUTS.module_dict],
        help=f'checkpoint layout; auto recognises it by its keys ({layouts})')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    summary = convert_checkpoint(args.input, args.output, args.layout,
                                 args.trust_checkpoint)
    print(f'layout: {summary["layout"]}')
    print(f'keys written: {summary["num_keys"]}')
    if summary['dropped']:
        why = CHECKPOINT_LAYOUTS.get(summary['layout']).dropped_reason
        print(f'dropped ({why}): ' + ', '.join(summary['dropped']))
    print(f'saved: {summary["out_path"]}')


if __name__ == '__main__':
    run_cli(main)

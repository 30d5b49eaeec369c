"""Generate the synthetic-people COCO keypoint dataset (the default data).

Does nothing when ``--out`` already holds a complete generation with the same
parameters (recorded in ``OUT/generation.json``); otherwise regenerates,
removing the files of the previous generation first.
"""
import argparse
import sys
from typing import List, Optional

from sspose_mm.synthetic import STYLES, ensure_synthetic_coco


class _Parser(argparse.ArgumentParser):

    def error(self, message: str) -> None:
        # One line instead of argparse's usage block.
        self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


def main(argv: Optional[List[str]] = None) -> int:
    parser = _Parser(
        prog='make_synthetic_data.py',
        description='Generate the synthetic-people COCO keypoint dataset.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        '--out', default='data/synthetic', help='output data root')
    for flag, default, what in (('--train', 320, 'training images'),
                                ('--val', 64, 'validation images'),
                                ('--seed', 0, 'non-negative random seed')):
        parser.add_argument(flag, type=int, default=default, help=what)
    parser.add_argument(
        '--image-size',
        type=int,
        nargs=2,
        default=[320, 256],
        metavar=('W', 'H'),
        help='image width and height')
    parser.add_argument(
        '--max-people', type=int, default=4, help='most people per image')
    parser.add_argument(
        '--style',
        choices=sorted(STYLES),
        default='cluttered',
        help='scene style: crowded, cluttered scenes with every view, or '
        'clean ones with fewer distractors, overlaps and profile views '
        '(the TransPose quickstart\'s)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='regenerate even if the output is up to date')
    args = parser.parse_args(argv)
    splits = {'train': args.train, 'val': args.val}
    try:
        result, generated = ensure_synthetic_coco(
            args.out,
            splits,
            seed=args.seed,
            image_size=tuple(args.image_size),
            max_people=args.max_people,
            style=args.style,
            force=args.force,
            progress=True)
    except ValueError as error:
        print(f'make_synthetic_data.py: error: {error}', file=sys.stderr)
        return 2
    state = 'wrote' if generated else 'up to date, skipped generation of'
    print(f'{state} {result["out_dir"]} (seed {args.seed}, image size '
          f'{args.image_size[0]}x{args.image_size[1]}, {args.style} scenes)')
    for split, info in result['splits'].items():
        print(f'  {split}: {info["num_images"]} images, '
              f'{info["num_annotations"]} people, '
              f'{info["num_detections"]} detections -> {info["ann_file"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

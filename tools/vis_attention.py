"""Draw TransPose's attention figure for one person in one image.

    python tools/vis_attention.py CONFIG CHECKPOINT IMAGE --out fig.png
        [--bbox X Y W H] [--mode dependency|affect] [--threshold T]
        [--layers I J ...] [--device cpu]

Rows are encoder layers; per keypoint, the attention map of the token under
the model's own prediction. CHECKPOINT must fit the config's model exactly;
"none" shows the untrained model's attention.
"""
import sspose_mm  # noqa: F401  isort: skip (mmpose importable first)
import argparse

from sspose_mm.apis.attention_figure import (MODES, attention_for_crop,
                                             draw_attention_figure,
                                             read_person)
from sspose_mm.apis.loading import init_model, topdown_config
from sspose_mm.cli import run_cli


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='checkpoint, or "none"')
    parser.add_argument('image')
    parser.add_argument('--out', required=True, help='output picture')
    parser.add_argument(
        '--bbox',
        type=float,
        nargs=4,
        metavar=('X', 'Y', 'W', 'H'),
        help='person box in image pixels (default: the '
        'whole image)')
    parser.add_argument(
        '--mode',
        choices=MODES,
        default='dependency',
        help='dependency: what each keypoint attends to; '
        'affect: what attends to it')
    parser.add_argument(
        '--threshold',
        type=float,
        default=0.,
        help='hide attention values <= this (uniform '
        'attention is 1/#tokens)')
    parser.add_argument(
        '--layers',
        type=int,
        nargs='+',
        help='encoder layers to show (default: all)')
    parser.add_argument('--device', help='default: cuda:0 if available')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # The image and the box are checked before the model loads.
    read_person(args.image, args.bbox)
    cfg = topdown_config(args.config, args.checkpoint,
                         'tools/vis_attention.py')
    model = init_model(cfg, args.checkpoint, args.device)
    result = attention_for_crop(model, args.image, args.bbox)
    draw_attention_figure(result, model.dataset_meta, args.mode,
                          args.threshold, args.layers, args.out)
    print(f'saved {args.out}')


if __name__ == '__main__':
    run_cli(main)

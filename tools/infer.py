"""Predict and draw people's skeletons on an image, a folder or a video.

    python tools/infer.py CONFIG CHECKPOINT INPUT [--out-dir DIR]
        [--bbox X Y W H | --det-file DETS.json --ann-file COCO.json
         [--det-thr 0.3]] [--kpt-thr 0.3] [--device cpu]

INPUT is an image (jpg, jpeg, png, bmp), a folder of them (sorted by name;
unreadable images are skipped and counted) or a video (mp4, avi, mov, mkv).
Person boxes: one --bbox for every image or frame; a COCO-results --det-file
matched to images by file name through --ann-file's image_id -> file_name
(boxes scored above --det-thr kept); or else the whole image or frame.

Writes to --out-dir one picture per image (same name; an --out-dir where it
would replace its input is refused) or <stem>.mp4 for a video, and
predictions.json (COCO results: image_id, file_name or frame, category_id,
keypoints, score, bbox).

CHECKPOINT must fit the config's model exactly (else it stops, saying what
the file looks like); "none" runs the untrained model (random predictions).
"""
import sspose_mm  # noqa: F401  isort: skip (mmpose importable first)
import argparse
from typing import List, Optional

from sspose_mm.apis.infer import (PersonBoxes, load_and_run_inference,
                                  print_summary)
from sspose_mm.cli import run_cli


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.split('\n')[5:]))
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='checkpoint, or "none"')
    parser.add_argument('input', help='image, folder of images or video')
    parser.add_argument(
        '--out-dir',
        default='work_dirs/infer',
        help='default: work_dirs/infer')
    parser.add_argument(
        '--bbox',
        type=float,
        nargs=4,
        metavar=('X', 'Y', 'W', 'H'),
        help='one person box for every image or frame')
    parser.add_argument('--det-file', help='COCO-results detection JSON')
    parser.add_argument(
        '--ann-file',
        help='COCO annotation JSON mapping the '
        'detections\' image_id to file_name')
    parser.add_argument(
        '--det-thr',
        type=float,
        default=0.3,
        help='keep detections scored above this')
    parser.add_argument(
        '--kpt-thr',
        type=float,
        default=0.3,
        help='draw keypoints scored at least this')
    parser.add_argument('--device', help='default: cuda:0 if available')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument(
        '--fast',
        action='store_true',
        help='fast inference path: batch norms folded, '
        'channels-last (see docs/speed.md)')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    boxes = PersonBoxes(args.bbox, args.det_file, args.ann_file, args.det_thr)
    summary = load_and_run_inference(args.config, args.checkpoint, args.input,
                                     args.out_dir, boxes, args.kpt_thr,
                                     args.device, args.fast,
                                     not args.no_progress)
    print_summary(summary)


if __name__ == '__main__':
    run_cli(main)

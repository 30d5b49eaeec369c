"""Draw a top-down model's predicted skeletons on images of a COCO file.

    python tools/vis_predictions.py CONFIG CHECKPOINT --out-dir DIR
        [--ann-file A --img-dir D] [--num-images 4] [--device cpu]

Boxes are the ground-truth person boxes of the annotation file (the test
dataset of the config by default); one picture per image shows every person.
CHECKPOINT must fit the config's model exactly; "none" draws the untrained
model's (random) predictions.
"""
import sspose_mm  # noqa: F401  isort: skip (mmpose importable first)
import argparse
import os.path as osp

import mmcv

from sspose_mm.apis import BoxedPoseInferencer, coco_images_with_boxes
from sspose_mm.apis.loading import init_model, topdown_config
from sspose_mm.cli import run_cli
from sspose_mm.errors import ConfigError


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='checkpoint, or "none"')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument(
        '--ann-file',
        help='COCO keypoint annotation file '
        '(default: the config\'s test annotation file)')
    parser.add_argument(
        '--img-dir',
        help='its image folder (default: the '
        'config\'s test image folder)')
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--kpt-thr', type=float, default=0.3)
    parser.add_argument('--device', help='default: cuda:0 if available')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = topdown_config(args.config, args.checkpoint,
                         'tools/vis_predictions.py')
    dataset = cfg.test_dataloader.dataset
    ann_file = args.ann_file or osp.join(dataset.data_root, dataset.ann_file)
    img_dir = args.img_dir or osp.join(dataset.data_root,
                                       dataset.data_prefix.get('img', ''))
    if not osp.isfile(ann_file):
        raise ConfigError(f'annotation file "{ann_file}" does not exist.')
    if not osp.isdir(img_dir):
        raise ConfigError(f'image folder "{img_dir}" does not exist.')
    inferencer = BoxedPoseInferencer(
        init_model(cfg, args.checkpoint, args.device))
    for image_path, boxes in coco_images_with_boxes(ann_file, img_dir,
                                                    args.num_images):
        inferencer.predict(
            mmcv.imread(image_path), image_path, args.out_dir, boxes,
            args.kpt_thr)
        out_file = osp.join(args.out_dir, osp.basename(image_path))
        print(f'saved {out_file} ({len(boxes)} people)')


if __name__ == '__main__':
    run_cli(main)

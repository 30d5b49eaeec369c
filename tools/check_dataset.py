"""Check a COCO-format keypoint dataset before training.

    python tools/check_dataset.py CONFIG [--phase train val test]
    python tools/check_dataset.py --ann-file ANN.json --img-dir IMAGES \
        --keypoints KEYPOINTS.json [--num-keypoints K]

One table per dataset: missing images, keypoint count mismatches (with its
layout and the model), bad flip pairs, boxes outside images, bad visibility
flags, duplicate ids. Exit status 1 when a check fails (not for warnings
alone), 2 on unusable input.
"""
import sspose_mm  # noqa: F401  isort: skip (mmpose importable first)
import argparse
import sys

from sspose_mm.cli import read_config, run_cli
from sspose_mm.cli.checks import dataset_files, dataset_metainfo, leaf_datasets
from sspose_mm.datasets.custom import (Finding, check_keypoint_dataset,
                                       findings_table, load_keypoint_file)
from sspose_mm.errors import ConfigError


def parse_args():
    parser = argparse.ArgumentParser(
        description='Check a COCO-format keypoint dataset before training')
    parser.add_argument(
        'config', nargs='?', help='config whose datasets to check')
    parser.add_argument(
        '--phase',
        nargs='+',
        default=['train', 'val'],
        choices=['train', 'val', 'test'],
        help='dataloaders of the config to check (default: train val)')
    parser.add_argument('--ann-file', help='COCO-format annotation json')
    parser.add_argument('--img-dir', help='folder of the images')
    parser.add_argument(
        '--keypoints',
        help='keypoint file (names, skeleton, flip pairs, sigmas; '
        'docs/datasets.md)')
    parser.add_argument(
        '--num-keypoints', type=int, help='keypoints the model predicts')
    args = parser.parse_args()
    direct = (args.ann_file, args.img_dir, args.keypoints)
    if args.config is None and not all(direct):
        parser.error('give a CONFIG, or --ann-file, --img-dir and --keypoints')
    if args.config is not None and any(direct):
        parser.error('give either a CONFIG or --ann-file/--img-dir/'
                     '--keypoints, not both')
    return args


def datasets_to_check(args):
    """``(title, ann_file, img_dir, keypoint layout, model K)`` to check."""
    if args.config is None:
        yield (args.ann_file, args.ann_file, args.img_dir,
               load_keypoint_file(args.keypoints), args.num_keypoints)
        return
    cfg = read_config(args.config)
    head = cfg.get('model', {}).get('head', {})
    model_k = head.get('out_channels', head.get('num_keypoints'))
    for phase in args.phase:
        loader = cfg.get(f'{phase}_dataloader')
        if not loader:
            continue
        for dataset, where in leaf_datasets(loader['dataset'],
                                            f'{phase}_dataloader.dataset'):
            metainfo = dataset_metainfo(dataset)
            if 'num_keypoints' not in metainfo:
                raise ConfigError(f'{where} names no keypoint layout '
                                  '(metainfo=dict(from_file=...))')
            files = dataset_files(dataset)
            yield (f'{where} ({files["ann_file"]})', files['ann_file'],
                   files['img_dir'], metainfo, model_k)


def main():
    args = parse_args()
    failed = False
    for title, ann_file, img_dir, metainfo, model_k in datasets_to_check(args):
        findings = check_keypoint_dataset(
            ann_file, img_dir, metainfo, model_keypoints=model_k)
        errors = sum(f.severity == Finding.ERROR for f in findings)
        warnings = sum(f.severity == Finding.WARNING for f in findings)
        print(f'{title}\n{findings_table(findings)}\n'
              f'{errors} failed, {warnings} warnings, '
              f'{len(findings) - errors - warnings} passed\n')
        failed |= errors > 0
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    run_cli(main)

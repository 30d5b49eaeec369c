"""Resident memory of a test run over time: its peak and whether it grows.

Runs ``tools/test.py CONFIG CHECKPOINT`` and samples the resident memory
(RSS) of that process and its dataloader workers from /proc (Linux). A test
keeping nothing per image but the keypoints holds its memory flat; one
accumulating heatmaps would grow by ``K x H x W x 4`` bytes per crop.

    python tools/peak_memory.py CONFIG [CHECKPOINT] [--num-crops N]

``--num-crops`` tests on a fresh synthetic set of about N people
(ground-truth boxes) instead of the config's data.
"""
import argparse
import contextlib
import math
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time
from typing import List, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from sspose_mm.cli import run_cli  # noqa: E402
from sspose_mm.errors import ConfigError  # noqa: E402

# The synthetic generator puts 1 to 4 people in an image: 2.22 on average
# (4,444 people in 2,000 validation images, seed 0).
PEOPLE_PER_IMAGE = 2.22


def rss_bytes(pid: int) -> int:
    try:
        with open(f'/proc/{pid}/statm') as f:  # sizes in pages
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except OSError:  # the process ended
        return 0


def children(pid: int) -> List[int]:
    try:
        with open(f'/proc/{pid}/task/{pid}/children') as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def sample(child: subprocess.Popen,
           interval: float) -> List[Tuple[float, int, int]]:
    """(seconds, main RSS, main + workers RSS) every ``interval`` s until
    ``child`` ends."""
    samples, start = [], time.time()
    while child.poll() is None:
        main = rss_bytes(child.pid)
        workers = sum(rss_bytes(pid) for pid in children(child.pid))
        samples.append((time.time() - start, main, main + workers))
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(interval)
    return samples


def synthetic_options(num_crops: int, folder: str) -> List[str]:
    from sspose_mm.synthetic import generate_synthetic_coco
    images = math.ceil(num_crops / PEOPLE_PER_IMAGE)
    print(f'generating {images} synthetic validation images in {folder}')
    made = generate_synthetic_coco(
        folder, {'val': images}, seed=0, progress=True)['splits']['val']
    print(f'{made["num_annotations"]} people')
    return [
        f'test_dataloader.dataset.data_root={folder}',
        f'test_dataloader.dataset.ann_file={made["ann_file"]}',
        f'test_dataloader.dataset.data_prefix.img={made["img_dir"]}/',
        'test_dataloader.dataset.bbox_file=None',
        f'test_evaluator.ann_file={made["ann_file"]}',
    ]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        'checkpoint',
        nargs='?',
        default='none',
        help='checkpoint, or "none" (untrained model)')
    parser.add_argument(
        '--num-crops', type=int, help='test on a synthetic set of ~N people')
    parser.add_argument(
        '--interval', type=float, default=0.5, help='seconds between samples')
    parser.add_argument(
        '--cfg-options', nargs='+', default=[], help='passed to tools/test.py')
    return parser.parse_args()


def main():
    args = parse_args()
    if not osp.isfile(args.config):
        raise ConfigError(f'config file "{args.config}" does not exist.')
    with tempfile.TemporaryDirectory() as folder:
        options = synthetic_options(args.num_crops,
                                    folder) if args.num_crops else []
        test = [sys.executable, osp.join(ROOT, 'tools/test.py'), args.config]
        command = test + [args.checkpoint, '--work-dir', f'{folder}/work']
        if options or args.cfg_options:
            command += ['--cfg-options'] + options + args.cfg_options
        child = subprocess.Popen(command, cwd=ROOT)
        samples = sample(child, args.interval)
    if child.returncode != 0:
        sys.exit(child.returncode)
    report(samples)


def report(samples: List[Tuple[float, int, int]]) -> None:
    samples = [s for s in samples if s[1] > 0]
    mib = 1 / 2**20
    peak_main = max(s[1] for s in samples) * mib
    peak_tree = max(s[2] for s in samples) * mib
    print(f'\npeak RSS: test process {peak_main:.0f} MiB, with dataloader '
          f'workers {peak_tree:.0f} MiB ({samples[-1][0]:.0f} s, '
          f'{len(samples)} samples)')
    print('RSS of the test process over the run (MiB):')
    for fraction in (0.25, 0.5, 0.75, 1.0):
        index = min(len(samples) - 1, int(fraction * len(samples)))
        seconds, main, tree = samples[index]
        print(f'  {fraction:4.0%} ({seconds:5.0f} s): {main * mib:6.0f}'
              f'   with workers {tree * mib:6.0f}')


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    run_cli(main)

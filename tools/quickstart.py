"""The README's main job: synthetic data, TransPose trained and tested on it.

Generates the clean synthetic scenes, trains the quickstart config with
``./dist_train.sh CONFIG 2`` (two CPU processes), tests the untrained and the
trained model, draws predicted skeletons and ends with one line:
``quickstart: coco/AP=<value> in <minutes> min``.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = ('configs/transpose/'
          'td-hm_transpose-r-a3_2xb8-7e_synthetic-clean-96x72.py')
# The config's data (synthetic_clean_root of configs/_base_/datasets/
# synthetic.py): one person an image, so that crops hold no neighbour's limbs
# (coco/AP 0.37 against 0.125 with up to 4, same crop count, 96x72, 7
# epochs); 1,080 training and 138 validation people, as before.
DATA_ARGS = [
    '--style', 'clean', '--out', 'data/synthetic_clean', '--train', '1080',
    '--val', '138', '--max-people', '1'
]


def run(step: str, *command: str) -> None:
    print(f'\n== {step}: {" ".join(command)}', flush=True)
    result = subprocess.run(list(command), cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f'quickstart: "{step}" failed (exit {result.returncode}); '
                 'its output is above.')


def test_ap(checkpoint: str, work_dir: str, nproc: int, name: str) -> float:
    out = osp.join(work_dir, f'metrics_{name}.json')
    run(f'test the {name} model', './dist_test.sh', CONFIG, checkpoint,
        str(nproc), '--work-dir', work_dir, '--out', out)
    with open(out) as f:
        return json.load(f)['coco/AP']


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/quickstart')
    parser.add_argument('--nproc', type=int, default=2)
    args = parser.parse_args()
    # `make quickstart` passes its start time so that the install counts too.
    start = float(os.environ.get('QUICKSTART_START', time.time()))
    python = sys.executable
    run('generate the synthetic data', python, 'tools/make_synthetic_data.py',
        *DATA_ARGS)
    # The test below evaluates the final model; no validation during training.
    run('train', './dist_train.sh', CONFIG, str(args.nproc), '--work-dir',
        args.work_dir, '--no-validate')
    with open(osp.join(ROOT, args.work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    untrained_ap = test_ap('none', args.work_dir, args.nproc, 'untrained')
    trained_ap = test_ap(checkpoint, args.work_dir, args.nproc, 'trained')
    pictures = osp.join(args.work_dir, 'pictures')
    run('draw predictions', python, 'tools/vis_predictions.py', CONFIG,
        checkpoint, '--out-dir', pictures)
    minutes = (time.time() - start) / 60
    print(
        f'\nuntrained model: coco/AP={untrained_ap:.3f}; trained: '
        f'{trained_ap:.3f}; checkpoint {checkpoint}; pictures in {pictures}/')
    print(f'quickstart: coco/AP={trained_ap:.3f} in {minutes:.1f} min')


if __name__ == '__main__':
    main()

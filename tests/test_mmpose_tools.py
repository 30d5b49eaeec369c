"""A config means the same under MMPose's own tools as under ours: the
config names every type that runs, and our tools add only the user's
options (and environment policies that change no result)."""
from pathlib import Path

import mmpose
import pytest
import torch

from conftest import QUICKSTART_CONFIG, as_cli, coco_excerpt_options, run_tool

MMPOSE_TRAIN = Path(mmpose.__file__).parent / '.mim' / 'tools' / 'train.py'


def train_options() -> dict:
    """The quickstart config on the COCO excerpt: 2 epochs of 2 iterations,
    with validation, a checkpoint each epoch, one worker process."""
    return dict(
        coco_excerpt_options(), **{
            'train_cfg.max_epochs': 2,
            'train_cfg.val_interval': 1,
            'train_dataloader.num_workers': 1,
            'default_hooks.checkpoint.max_keep_ckpts': 1
        })


def final_weights(work_dir: Path) -> dict:
    return torch.load(work_dir / 'epoch_2.pth', weights_only=True)


@pytest.mark.slow
def test_mmpose_train_tool_trains_as_ours(tmp_path):
    """Bit for bit: ``--deterministic`` here is the seed, PyTorch's
    deterministic algorithms and non-persistent workers, which MMPose's
    tool gets as the equivalent config options."""
    ours = run_tool([
        'tools/train.py',
        str(QUICKSTART_CONFIG), '--work-dir',
        str(tmp_path / 'ours'), '--deterministic'
    ] + as_cli(train_options()))
    assert ours.returncode == 0, ours.stderr[-3000:]
    theirs = run_tool([
        str(MMPOSE_TRAIN),
        str(QUICKSTART_CONFIG), '--work-dir',
        str(tmp_path / 'mmpose')
    ] + as_cli(
        dict(
            train_options(), **{
                'randomness.seed': 0,
                'randomness.deterministic': True,
                'train_dataloader.persistent_workers': False
            })))
    assert theirs.returncode == 0, theirs.stderr[-3000:]
    ours, theirs = (
        final_weights(tmp_path / name) for name in ('ours', 'mmpose'))
    assert ours['meta']['iter'] == theirs['meta']['iter'] > 2
    assert ours['state_dict'].keys() == theirs['state_dict'].keys()
    for key, value in ours['state_dict'].items():
        assert torch.equal(value, theirs['state_dict'][key]), key
    # The package's hooks ran under MMPose's tool too: ExactResumeHook
    # saved the random states, and the file loaded with weights_only=True
    # (PlainCheckpointHook; mmengine's own message hub needs unpickling).
    assert 'rng_states' in theirs

"""A config means the same under MMPose's own tools as under ours: the
config names every type that runs, and our tools add only the user's
options (and environment policies that change no result)."""
import json
from pathlib import Path

import mmpose
import pytest
import torch

from conftest import QUICKSTART_CONFIG, as_cli, coco_excerpt_options, run_tool

MMPOSE_TOOLS = Path(mmpose.__file__).parent / '.mim' / 'tools'
MMPOSE_TRAIN = MMPOSE_TOOLS / 'train.py'


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


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """The quickstart config trained by our tool and by MMPose's: the work
    dirs' folder and the two runs (both tests below use them)."""
    tmp_path = tmp_path_factory.mktemp('trained')
    ours = run_tool([
        'tools/train.py',
        str(QUICKSTART_CONFIG), '--work-dir',
        str(tmp_path / 'ours'), '--deterministic'
    ] + as_cli(train_options()))
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
    return tmp_path, ours, theirs


@pytest.mark.slow
def test_mmpose_train_tool_trains_as_ours(trained):
    """Bit for bit: ``--deterministic`` here is the seed, PyTorch's
    deterministic algorithms and non-persistent workers, which MMPose's
    tool gets as the equivalent config options."""
    tmp_path, ours, theirs = trained
    assert ours.returncode == 0, ours.stderr[-3000:]
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


@pytest.mark.slow
def test_mmpose_test_tool_evaluates_as_ours(trained, tmp_path):
    """The checkpoint our tool trained: MMPose's ``tools/test.py`` gives
    the same metrics, bit for bit, from the same config, ``--show-dir``
    with ``--cfg-options`` included (MMPose merges them last: the
    interval stays 5, not ``--interval``'s default 1)."""
    checkpoint = trained[0] / 'ours' / 'epoch_2.pth'
    assert trained[1].returncode == 0, trained[1].stderr[-3000:]
    options = dict(coco_excerpt_options(),
                   **{'default_hooks.visualization.interval': 5})
    results = {}
    for name, tool in (('ours', 'tools/test.py'),
                       ('mmpose', str(MMPOSE_TOOLS / 'test.py'))):
        work_dir, out = tmp_path / name, tmp_path / f'{name}.json'
        run = run_tool([
            tool,
            str(QUICKSTART_CONFIG),
            str(checkpoint), '--work-dir',
            str(work_dir), '--out',
            str(out), '--show-dir', 'vis'
        ] + as_cli(options))
        assert run.returncode == 0, run.stderr[-3000:]
        # The config each Runner ran, as it dumped it into the work dir.
        ran = (work_dir / QUICKSTART_CONFIG.name).read_text().replace(
            str(work_dir), '<work_dir>')
        results[name] = json.loads(out.read_text()), ran
    assert 'coco/AP' in results['ours'][0]
    assert results['ours'][0] == results['mmpose'][0]
    assert results['ours'][1] == results['mmpose'][1]
    assert 'interval=5' in results['ours'][1]

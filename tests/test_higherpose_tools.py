"""The top-down tools refuse HigherPose (bottom-up) with one ``error:`` line
naming what to use instead, before loading anything: tools/infer.py used to
end in an IndexError, tools/vis_predictions.py ran top-down inference on
the bottom-up model without complaint."""
import pytest
import torch
from mmengine.config import Config
from mmpose.registry import MODELS

from conftest import COCO, REPO, run_tool

CONFIG = str(REPO / 'configs/higherpose/'
             'ae_higherpose-w32_2xb8-4e_synthetic-128x128.py')


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """The quickstart model's initial weights, saved as a checkpoint."""
    cfg = Config.fromfile(CONFIG)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    path = tmp_path_factory.mktemp('higherpose') / 'initial.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


def check_refused(result, out_dir):
    assert result.returncode == 2, (
        result.stdout[-2000:] + result.stderr[-3000:])
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
    errors = [
        line for line in result.stderr.splitlines()
        if line.startswith('error:')
    ]
    assert len(errors) == 1, result.stderr[-3000:]
    for fragment in ('top-down only', 'BottomupPoseEstimator',
                     'mmpose.apis.inference_bottomup', 'tools/test.py'):
        assert fragment in errors[0], errors[0]
    # Refused before any work: nothing was written.
    assert not out_dir.exists()


@pytest.mark.slow
def test_infer_refuses_a_bottom_up_config(checkpoint, tmp_path):
    coco = COCO
    image = sorted(coco.glob('*.jpg'))[0]
    out_dir = tmp_path / 'out'
    result = run_tool([
        'tools/infer.py', CONFIG, checkpoint,
        str(image), '--out-dir',
        str(out_dir), '--device', 'cpu'
    ],
                      timeout=300)
    check_refused(result, out_dir)


@pytest.mark.slow
def test_vis_predictions_refuses_a_bottom_up_config(checkpoint, tmp_path):
    # A real annotation file and images, so that without the check the tool
    # would have run.
    coco = COCO
    out_dir = tmp_path / 'out'
    result = run_tool([
        'tools/vis_predictions.py', CONFIG, checkpoint, '--out-dir',
        str(out_dir), '--ann-file',
        str(coco / 'test_coco.json'), '--img-dir',
        str(coco), '--num-images', '1', '--device', 'cpu'
    ],
                      timeout=300)
    check_refused(result, out_dir)

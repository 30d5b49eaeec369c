"""A checkpoint loads whole or not at all, in every tool and in
``sspose_mm.apis.init_model``; ``none`` runs the untrained model everywhere.

mmengine alone loads the tensors that fit, logs a warning and leaves random
weights elsewhere, so each tool drew or exported a random model with exit
status 0. The checkpoints are made here: the quickstart model (TransPose-R
with 3 encoder layers), the same with 4 layers (the A3/A4 mix-up) and the
tiny SHaRPose (another family).
"""
import pytest
import torch
from mmengine.config import Config
from mmpose.registry import MODELS

from sspose_mm.apis import init_model
from sspose_mm.errors import CheckpointError
from sspose_mm.synthetic import generate_synthetic_coco
from conftest import QUICKSTART_CONFIG, REPO, run_tool

CONFIG = str(QUICKSTART_CONFIG)
SHARPOSE = str(REPO / 'configs/sharpose/'
               'td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-128x96.py')


def save_model(model_cfg, path) -> dict:
    torch.manual_seed(0)
    state = MODELS.build(model_cfg).state_dict()
    torch.save({'state_dict': state}, path)
    return state


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('fit')
    cfg = Config.fromfile(CONFIG)
    fits = save_model(cfg.model, root / 'r-a3.pth')
    cfg.model.neck.num_layers = 4
    save_model(cfg.model, root / 'r-a4.pth')
    save_model(Config.fromfile(SHARPOSE).model, root / 'sharpose.pth')
    split = generate_synthetic_coco(
        root / 'data', {'val': 2}, seed=0)['splits']['val']
    return dict(
        root=root,
        fits=fits,
        ann_file=str(split['ann_file']),
        img_dir=str(split['img_dir']),
        image=str(sorted(split['img_dir'].iterdir())[0]))


def test_init_model_loads_every_tensor(files):
    model = init_model(CONFIG, str(files['root'] / 'r-a3.pth'), 'cpu')
    state = model.state_dict()
    assert state.keys() == files['fits'].keys()
    for key, value in files['fits'].items():
        assert torch.equal(state[key], value), key


@pytest.mark.parametrize('name, fragments', [
    ('r-a4.pth', [
        '12 of its tensors are not in the model (neck.layers.3.',
        'It looks like TransPose-R (4 transformer layers of width '
        '256, 17 keypoints); the config builds TransPose-R (3 '
        'transformer layers of width 256, 17 keypoints)'
    ]),
    ('sharpose.pth', [
        "189 of the model's 189 tensors are not in it",
        'It looks like SHaRPose (12 transformer layers of '
        'width 384, 17 keypoints)'
    ]),
])
def test_init_model_refuses_another_variant_or_family(files, name, fragments):
    with pytest.raises(CheckpointError) as error:
        init_model(CONFIG, str(files['root'] / name), 'cpu')
    message = str(error.value)
    assert 'does not fit the model of this config' in message
    for fragment in fragments:
        assert fragment in message


def run(tool: str, args: list):
    """Run ``tools/<tool>.py`` as a user does: these tests check each
    tool's command line (its exit status, its one ``error:`` line)."""
    return run_tool([f'tools/{tool}.py'] + args, timeout=300)


def tool_args(tool: str, checkpoint: str, files: dict, out) -> list:
    return {
        'infer': [
            CONFIG, checkpoint, files['image'], '--out-dir',
            str(out), '--device', 'cpu', '--no-progress'
        ],
        'vis_predictions': [
            CONFIG, checkpoint, '--out-dir',
            str(out), '--ann-file', files['ann_file'], '--img-dir',
            files['img_dir'], '--num-images', '1', '--device', 'cpu'
        ],
        'vis_attention': [
            CONFIG, checkpoint, files['image'], '--out',
            str(out / 'figure.png'), '--device', 'cpu'
        ],
        'export_onnx':
        [CONFIG, checkpoint,
         str(out / 'model.onnx'), '--repeat', '1'],
        'benchmark': [
            CONFIG, '--checkpoint', checkpoint, '--batch', '1', '--repeat',
            '1', '--no-steps', '--input', '64x48', '--json',
            str(out / 'report.json')
        ],
    }[tool]


TOOLS = [
    'infer', 'vis_predictions', 'vis_attention', 'export_onnx', 'benchmark'
]


@pytest.mark.slow
@pytest.mark.parametrize('tool', TOOLS)
def test_every_tool_refuses_a_checkpoint_of_another_model(
        tool, files, tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    result = run(
        tool, tool_args(tool, str(files['root'] / 'sharpose.pth'), files, out))
    code, err = result.returncode, result.stderr
    errors = [line for line in err.splitlines() if line.startswith('error:')]
    assert code == 2, err
    assert len(errors) == 1, err
    assert 'does not fit the model of this config' in errors[0]
    assert 'looks like SHaRPose' in errors[0]
    assert not any(out.iterdir())  # nothing drawn, exported or reported


@pytest.mark.slow
@pytest.mark.parametrize(
    'tool', ['infer', 'vis_predictions', 'vis_attention', 'benchmark'])
def test_none_runs_the_untrained_model_in_every_tool(tool, files, tmp_path):
    """tools/test.py and tools/export_onnx.py took "none" before (their own
    tests use it); the drawing tools and the benchmark said it did not
    exist."""
    out = tmp_path / 'out'
    out.mkdir()
    result = run(tool, tool_args(tool, 'none', files, out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert any(out.iterdir())


@pytest.mark.slow
def test_vis_attention_checks_the_box_before_the_model(files, tmp_path):
    """A box off the image stops with its own message although the
    checkpoint does not fit either: the input is checked first."""
    out = tmp_path / 'figure.png'
    result = run('vis_attention', [
        CONFIG,
        str(files['root'] / 'sharpose.pth'), files['image'], '--bbox', '5000',
        '0', '10', '10', '--out',
        str(out)
    ])
    err = result.stderr
    assert result.returncode == 2
    assert err.strip().splitlines()[-1].startswith(
        'error: --bbox 5000 0 10 10 lies outside the image'), err
    assert not out.exists()

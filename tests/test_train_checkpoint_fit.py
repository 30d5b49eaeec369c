"""Training's ``load_from`` loads whole or stops, as every tool does
(issue 15): the runtime base's ``checkpoint_fit`` hook, in mmengine's own
Runner (so also under MMPose's train tool). Without it mmengine loads what
fits, warns, and trains from random weights."""
import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from sspose_mm.apis.loading import check_checkpoint_fits
from sspose_mm.errors import CheckpointError
from conftest import REPO

RUNTIME = Config.fromfile(REPO / 'configs/_base_/default_runtime.py')


class Tiny(BaseModel):
    """A backbone and a head, the two parts the partial paths name."""

    def __init__(self, width: int = 3, outputs: int = 2) -> None:
        super().__init__()
        self.backbone = nn.Linear(2, width)
        self.head = nn.Linear(width, outputs)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.head(self.backbone(inputs))


def save(model: nn.Module, path, prefix: str = '') -> dict:
    state = {
        k: v.clone()
        for k, v in model.state_dict().items() if k.startswith(prefix)
    }
    torch.save({'state_dict': state}, path)
    return state


def load(tmp_path, checkpoint, model: nn.Module, custom_hooks=()):
    """``model`` after a Runner with the package's runtime hooks loaded
    ``checkpoint`` as ``load_from``."""
    runner = Runner(
        model=model,
        work_dir=str(tmp_path / 'work'),
        load_from=str(checkpoint),
        default_hooks=RUNTIME.default_hooks,
        custom_hooks=list(custom_hooks),
        default_scope='mmpose',
        experiment_name=tmp_path.name)  # one logger per runner
    runner.load_or_resume()
    return model


def fresh(**model_args) -> Tiny:
    torch.manual_seed(1)  # other initial weights than the saved ones
    return Tiny(**model_args)


@pytest.mark.parametrize('model_args', [dict(width=4), dict(outputs=3)])
def test_load_from_of_another_model_stops(tmp_path, model_args):
    path = tmp_path / 'other.pth'
    save(Tiny(**model_args), path)
    with pytest.raises(CheckpointError) as error:
        load(tmp_path, path, fresh())
    assert f'the checkpoint {path} does not fit the model of this config ' \
        '(Tiny): ' in str(error.value)


def test_a_fitting_checkpoint_loads_every_tensor(tmp_path):
    saved = save(Tiny(), tmp_path / 'same.pth')
    state = load(tmp_path, tmp_path / 'same.pth', fresh()).state_dict()
    assert all(torch.equal(state[k], v) for k, v in saved.items())


def test_an_encoder_checkpoint_loads_the_backbone(tmp_path):
    """EncoderCheckpointHook's files (docs/sspose.md): the backbone whole,
    the head from its initialisation; another backbone stops."""
    torch.manual_seed(0)
    saved = save(Tiny(), tmp_path / 'encoder.pth', 'backbone.')
    model = load(tmp_path, tmp_path / 'encoder.pth', fresh())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    torch.manual_seed(1)
    assert torch.equal(model.head.weight, Tiny().head.weight)
    save(Tiny(width=4), tmp_path / 'other.pth', 'backbone.')
    with pytest.raises(CheckpointError, match='does not fit'):
        load(tmp_path, tmp_path / 'other.pth', fresh())


class Table(nn.Module):
    """Adapts a stored table of another length as it loads, as
    SSposeConvViT resizes a position table pretrained at another size."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.randn(1, 1, length))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + 'table'
        state_dict[key] = nn.functional.interpolate(
            state_dict[key], size=self.table.shape[-1], mode='linear')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def test_a_tensor_the_model_adapts_as_it_loads_fits(tmp_path):
    """The shapes are those the model takes (an encoder pretrained at
    another input size, test_sspose_pretrain)."""
    torch.manual_seed(0)
    pretrained = Tiny()
    pretrained.backbone = Table(4)
    saved = save(pretrained, tmp_path / 'encoder.pth', 'backbone.')
    model = Tiny()
    model.backbone = Table(8)
    load(tmp_path, tmp_path / 'encoder.pth', model)
    expected = nn.functional.interpolate(
        saved['backbone.table'], size=8, mode='linear')
    assert torch.equal(model.backbone.table, expected)


def test_keypoint_transfer_hook_keeps_its_partial_load(tmp_path):
    torch.manual_seed(0)
    saved = save(Tiny(), tmp_path / 'coco.pth')
    model = load(tmp_path, tmp_path / 'coco.pth', fresh(outputs=3),
                 [dict(type='KeypointTransferHook', reinit=['head.'])])
    assert torch.equal(model.backbone.weight, saved['backbone.weight'])
    assert model.head.weight.shape == (3, 3)


def test_training_and_the_tools_give_one_line(tmp_path):
    """The hook's refusal is the tools' (utils.require_fit), word for
    word, for a file of no official layout."""
    path = tmp_path / 'other.pth'
    save(Tiny(width=4), path)
    with pytest.raises(CheckpointError) as in_training:
        load(tmp_path, path, fresh())
    with pytest.raises(CheckpointError) as in_a_tool:
        check_checkpoint_fits(fresh(), str(path))
    assert str(in_training.value) == str(in_a_tool.value)

"""Learning-rate schedules follow ``train_cfg.max_epochs``: their epoch-based
schedulers state no end (mmengine's Runner ends them at the last epoch) and
the cosine no ``T_max`` (it anneals over end - begin), so a config or a
``--cfg-options train_cfg.max_epochs=N`` that changes the epochs changes
nothing else. Checked on mmengine's own Runner with a one-weight model."""
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import DataLoader

from conftest import REPO

EPOCHS = 3


class OneWeight(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, inputs: torch.Tensor, mode: str = 'loss') -> dict:
        return dict(loss=(self.weight - inputs).pow(2).sum())


# TransPose's COCO recipe (240 epochs for -H) and its MPII fine-tuning
# (100): schedules without warm-up, whose lr is the cosine's alone.
@pytest.mark.parametrize('config', [
    'td-hm_transpose-h-s_2xb16-240e_coco-256x192.py',
    'td-hm_transpose-r-a4_1xb20-100e_mpii-256x256.py'
])
def test_the_cosine_anneals_over_the_epochs_trained(config, tmp_path):
    cfg = Config.fromfile(REPO / 'configs/transpose' / config)
    base_lr = cfg.optim_wrapper.optimizer.lr
    runner = Runner(
        model=OneWeight(),
        work_dir=str(tmp_path),
        train_dataloader=DataLoader([dict(inputs=torch.ones(1))],
                                    batch_size=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=base_lr)),
        param_scheduler=cfg.param_scheduler,
        train_cfg=dict(by_epoch=True, max_epochs=EPOCHS),
        default_hooks=dict(checkpoint=None),
        # The package's scope: without it the Runner makes mmengine's the
        # current one, and the tests after this build no MMPose model.
        default_scope='mmpose')
    runner.train()
    cosine = cfg.param_scheduler[-1]
    assert cosine.type == 'CosineAnnealingLR'
    # The last epoch trains at the cosine's value one epoch before its end
    # (a scheduler stops updating at its end). With the recipe's 230 or 240
    # (or 100) epochs pinned instead, it would still be within 0.2% of
    # base_lr.
    expected = cosine.eta_min + (base_lr - cosine.eta_min) * (
        1 + math.cos(math.pi * (EPOCHS - 1) / EPOCHS)) / 2
    assert runner.optim_wrapper.get_lr()['lr'][0] == pytest.approx(expected)

"""SHaRPose through MMPose's runner on the real COCO excerpt
(../shared/data/coco, 12 people): the quickstart config (SHaRPose-S at
128x96) trains two epochs of 3 iterations with both qp_start_epochs at 1, so
epoch 1 has no quality loss, epoch 2 has it and the validation after it is
gated; then tools/test.py evaluates the checkpoint (gate always on)."""
import json
import re

import pytest
import torch

from conftest import REPO, as_cli, coco_excerpt_options, run_tool

CONFIG = str(REPO / 'configs/sharpose/'
             'td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-128x96.py')
OPTIONS = {'model.backbone.qp_start_epoch': 1, 'model.head.qp_start_epoch': 1}
LOSS = re.compile(
    r'Epoch\(train\) \[(\d)\]\[\d/3\].*?loss_quality: ([\d.e-]+)')


def check_ok(result):
    assert result.returncode == 0, (result.stdout[-3000:] +
                                    result.stderr[-3000:])
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('sharpose')
    options = dict(coco_excerpt_options(), **OPTIONS, **{
        'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 2,
        'default_hooks.logger.interval': 1})
    log = check_ok(run_tool(['tools/train.py', CONFIG, '--work-dir',
                             str(work_dir)] + as_cli(options)))
    return work_dir, log


def test_quality_loss_switches_on_after_its_epoch(trained):
    _, log = trained
    losses = [(int(epoch), float(value)) for epoch, value in LOSS.findall(log)]
    assert [epoch for epoch, _ in losses] == [1, 1, 1, 2, 2, 2]
    assert all(value == 0 for epoch, value in losses if epoch == 1)
    assert all(value > 0 for epoch, value in losses if epoch == 2)
    assert 'SHaRPose: quality loss (weight 0.03) on from epoch 2' in log
    assert 'coco/AP' in log


def test_checkpoint_keeps_every_part_and_tests(trained, tmp_path):
    work_dir, _ = trained
    checkpoint = torch.load(work_dir / 'epoch_2.pth', weights_only=True)
    keys = checkpoint['state_dict']
    assert 'backbone.quality_predictor.mlp.6.weight' in keys
    assert 'backbone.reuse_block.1.fc2.weight' in keys
    assert 'head.heatmap_mlp.1.weight' in keys
    out = tmp_path / 'metrics.json'
    check_ok(run_tool(['tools/test.py', CONFIG, str(work_dir / 'epoch_2.pth'),
                       '--work-dir', str(tmp_path), '--out', str(out)] +
                      as_cli(coco_excerpt_options())))
    metrics = json.loads(out.read_text())
    assert {'coco/AP', 'coco/AR'} <= set(metrics)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())

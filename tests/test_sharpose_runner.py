"""SHaRPose through MMPose's runner on the real COCO excerpt
(tests/data/coco, 12 people): the quickstart config (SHaRPose-S at
128x96) trains two epochs of 3 iterations, set up as tools/train.py does,
with both qp_start_epochs at 1 and a validation after each epoch, so epoch 1
has no quality loss and an ungated validation, epoch 2 has the quality loss
and a gated validation; then tools/test.py evaluates the checkpoint (gate
always on)."""
import json
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from sspose_mm.cli import load_config
from conftest import REPO, as_cli, coco_excerpt_options, run_tool

CONFIG = str(REPO / 'configs/sharpose/'
             'td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-128x96.py')
# A threshold below the GELU quality's minimum (about -0.17) makes the gate
# refine nobody, so whether a forward was gated shows in its refine mask.
OPTIONS = {
    'model.backbone.qp_start_epoch': 1,
    'model.head.qp_start_epoch': 1,
    'model.backbone.qp_threshold': -1.0
}
LOSS = re.compile(
    r'Epoch\(train\) \[(\d)\]\[\d/3\].*?loss_quality: ([\d.e-]+)')


def check_ok(result):
    assert result.returncode == 0, (
        result.stdout[-3000:] + result.stderr[-3000:])
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Work dir, log text and, per backbone forward, (training mode,
    train_epoch, refine mask)."""
    work_dir = tmp_path_factory.mktemp('sharpose')
    options = dict(
        coco_excerpt_options(), **OPTIONS, **{
            'train_cfg.max_epochs': 2,
            'train_cfg.val_interval': 1,
            'default_hooks.logger.interval': 1
        })
    cfg = load_config(CONFIG, options, str(work_dir), 'none', ['train', 'val'])
    forwards = []
    with pytest.MonkeyPatch.context() as patch:
        # The runner formats its config with yapf to log and dump it, most
        # of this tiny run's time on 2 cores; the raw text serves as well.
        patch.setattr(Config, 'pretty_text', property(lambda self: self.text))
        runner = Runner.from_cfg(cfg)
        runner.model.backbone.register_forward_hook(
            lambda module, _inputs, feats: forwards.append(
                (module.training, module.train_epoch, feats.refine_mask.tolist(
                ))))
        runner.train()
    log = next(work_dir.rglob('*.log')).read_text()
    return work_dir, log, forwards


@pytest.mark.slow
def test_quality_loss_switches_on_after_its_epoch(trained):
    _, log, _ = trained
    losses = [(int(epoch), float(value)) for epoch, value in LOSS.findall(log)]
    assert [epoch for epoch, _ in losses] == [1, 1, 1, 2, 2, 2]
    assert all(value == 0 for epoch, value in losses if epoch == 1)
    assert all(value > 0 for epoch, value in losses if epoch == 2)
    assert 'SHaRPose: quality loss (weight 0.03) on from epoch 2' in log
    assert log.count('coco/AP: ') == 2  # one validation per epoch


@pytest.mark.slow
def test_only_validation_after_the_gate_epoch_is_gated(trained):
    """Training forwards refine every instance (never gated), validation in
    epoch 1 too (not after qp_start_epoch 1), validation in epoch 2 is gated
    and so, with this threshold, refines nobody."""
    _, _, forwards = trained
    phases = {}
    for training, epoch, mask in forwards:
        phases.setdefault((training, epoch), []).extend(mask)
    assert set(phases) == {(True, 1), (True, 2), (False, 1), (False, 2)}
    assert all(phases[True, 1]) and all(phases[True, 2])
    assert all(phases[False, 1])
    assert not any(phases[False, 2])
    # 12 people, flip test: every validation runs the backbone twice each.
    assert len(phases[False, 1]) == len(phases[False, 2]) == 2 * 12


@pytest.mark.slow
def test_checkpoint_keeps_every_part_and_tests(trained, tmp_path):
    work_dir, _, _ = trained
    checkpoint = torch.load(work_dir / 'epoch_2.pth', weights_only=True)
    keys = checkpoint['state_dict']
    assert 'backbone.quality_predictor.mlp.6.weight' in keys
    assert 'backbone.reuse_block.1.fc2.weight' in keys
    assert 'head.heatmap_mlp.1.weight' in keys
    out = tmp_path / 'metrics.json'
    check_ok(
        run_tool([
            'tools/test.py', CONFIG,
            str(work_dir / 'epoch_2.pth'), '--work-dir',
            str(tmp_path), '--out',
            str(out)
        ] + as_cli(coco_excerpt_options())))
    metrics = json.loads(out.read_text())
    assert {'coco/AP', 'coco/AR'} <= set(metrics)
    assert all(0.0 <= v <= 1.0 for v in metrics.values())

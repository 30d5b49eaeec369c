"""HigherPose through MMPose's runner on the real COCO and CrowdPose excerpts:
the configs' bottom-up training pipeline (random affine, flip, two-resolution
targets, heatmap masks), a few training iterations and the validation
after them on both, and tools/test.py with each trained checkpoint.
Tiny on purpose: 128x128 inputs, one transformer layer, one block per HRNet
stage."""
import json
import math
import re

import pytest
import torch
from mmengine.config import Config
from mmpose.registry import MODELS

from conftest import DATA, REPO, run_tool

EXCERPTS = {
    'coco': ('ae_higherpose-w32_1xb12-300e_coco-256x256.py', 'coco',
             'test_coco.json', 'coco/AP'),
    'crowdpose': ('ae_higherpose-w32_1xb12-300e_crowdpose-256x256.py',
                  'crowdpose', 'test_crowdpose.json', 'crowdpose/AP'),
}
SIZE = 128
# One batch holds a whole excerpt (4 COCO, 2 CrowdPose images): one
# iteration an epoch.
EPOCHS = 3


def tiny_config(name: str, path, load_from: str) -> str:
    """The dataset's 256 config at 128x128 on its excerpt, training from the
    weights of ``load_from``, written to ``path``."""
    config, folder, ann_file, metric = EXCERPTS[name]
    cfg = Config.fromfile(REPO / 'configs/higherpose' / config)
    data_root = str(DATA / folder)

    input_size = (SIZE, SIZE)
    codec = dict(
        cfg.codec,
        input_size=input_size,
        heatmap_size=(SIZE // 4, SIZE // 4),
        higher_heatmap_sizes=[(SIZE // 2, SIZE // 2)])
    train_pipeline = cfg.train_dataloader.dataset.pipeline
    train_pipeline[1].input_size = input_size
    train_pipeline[3].encoder = codec
    val_pipeline = cfg.val_dataloader.dataset.pipeline
    val_pipeline[1].input_size = input_size

    backbone = cfg.model.backbone
    for stage in ('stage2', 'stage3', 'stage4'):
        branches = backbone.extra[stage].num_branches
        backbone.extra[stage].update(
            num_modules=1, num_blocks=(1, ) * branches)
    backbone.update(input_size=input_size, num_layers=1, init_cfg=None)
    cfg.model.head.decoder.heatmap_size = input_size

    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(
            batch_size=4 if loader == 'train_dataloader' else 1,
            num_workers=0,
            persistent_workers=False)
        cfg[loader].dataset.update(
            data_root=data_root, ann_file=ann_file, data_prefix=dict(img=''))
    cfg.val_dataloader.dataset.pipeline = val_pipeline
    cfg.test_dataloader.dataset.pipeline = val_pipeline
    cfg.train_dataloader.dataset.pipeline = train_pipeline
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = f'{data_root}/{ann_file}'
    cfg.train_cfg.update(max_epochs=EPOCHS, val_interval=EPOCHS)
    cfg.load_from = load_from
    cfg.default_hooks.update(
        checkpoint=dict(type='CheckpointHook', interval=EPOCHS),
        logger=dict(type='LoggerHook', interval=1))
    cfg.randomness = dict(seed=0)
    cfg.dump(str(path))
    return metric


def check_ok(result):
    assert result.returncode == 0, (
        result.stdout[-3000:] + result.stderr[-3000:])
    return result.stdout + result.stderr


def save_initial_weights(config, path) -> dict:
    """Build the config's model, save its initial weights to ``path`` as a
    checkpoint; returns copies of its parameters."""
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, path)
    return {k: v.detach().clone() for k, v in model.named_parameters()}


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(EXCERPTS))
def test_train_validate_and_test_on_the_excerpt(name, tmp_path):
    config = tmp_path / 'tiny.py'
    initial_path = tmp_path / 'initial.pth'
    metric = tiny_config(name, config, load_from=str(initial_path))
    initial = save_initial_weights(config, initial_path)
    work_dir = tmp_path / 'work'
    log = check_ok(
        run_tool(['tools/train.py',
                  str(config), '--work-dir',
                  str(work_dir)]))
    # Every loss term is logged and finite at each of the iterations; the
    # validation after the last epoch evaluated the excerpt.
    for term in ('loss_kpt', 'loss_kpt_highres', 'loss_pull', 'loss_push'):
        values = re.findall(rf'\b{term}: (\S+)', log)
        assert len(values) == EPOCHS, (term, values)
        assert all(math.isfinite(float(v)) for v in values), (term, values)
    assert f'{metric}: ' in log
    assert f'Load checkpoint from {initial_path}' in log
    trained_path = work_dir / f'epoch_{EPOCHS}.pth'
    trained = torch.load(trained_path, weights_only=True)['state_dict']
    # Training started from the saved weights and changed the parameters of
    # every part of the network (each top-level module of the backbone and
    # the head), not only buffers such as batch-norm statistics.
    parts = {}
    for key, value in initial.items():
        part = '.'.join(key.split('.')[:2])
        parts[part] = parts.get(part,
                                False) or not torch.equal(trained[key], value)
    assert 'backbone.local_transformer' in parts
    assert all(parts.values()), [p for p, moved in parts.items() if not moved]

    out = tmp_path / 'metrics.json'
    check_ok(
        run_tool([
            'tools/test.py',
            str(config),
            str(trained_path), '--work-dir',
            str(tmp_path / 'test'), '--out',
            str(out)
        ]))
    metrics = json.loads(out.read_text())
    assert metric in metrics
    assert all(-1.0 <= v <= 1.0 for v in metrics.values())

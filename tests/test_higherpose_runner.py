"""HigherPose through MMPose's runner on the real COCO and CrowdPose excerpts:
the configs' bottom-up training pipeline (random affine, flip, two-resolution
targets, heatmap masks), a few training iterations and the validation
after them on both, and tools/test.py with the trained COCO checkpoint.
Tiny on purpose: 128x128 inputs, one transformer layer, one block per HRNet
stage."""
import json
import math
import re

import pytest
import torch
from mmengine.config import Config

from conftest import REPO, SHARED, require_shared, run_tool

EXCERPTS = {
    'coco': ('ae_higherpose-w32_1xb12-300e_coco-256x256.py', 'coco',
             'test_coco.json', 'coco/AP'),
    'crowdpose': ('ae_higherpose-w32_1xb12-300e_crowdpose-256x256.py',
                  'crowdpose', 'test_crowdpose.json', 'crowdpose/AP'),
}
SIZE = 128


def tiny_config(name: str, path) -> str:
    """The dataset's 256 config at 128x128 on its excerpt, written to
    ``path``."""
    config, folder, ann_file, metric = EXCERPTS[name]
    cfg = Config.fromfile(REPO / 'configs/higherpose' / config)
    data_root = str(require_shared(SHARED / 'data' / folder))

    input_size = (SIZE, SIZE)
    codec = dict(cfg.codec, input_size=input_size,
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
        backbone.extra[stage].update(num_modules=1,
                                     num_blocks=(1, ) * branches)
    backbone.update(input_size=input_size, num_layers=1, init_cfg=None)
    cfg.model.head.decoder.heatmap_size = input_size

    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(batch_size=4 if loader == 'train_dataloader' else 1,
                           num_workers=0, persistent_workers=False)
        cfg[loader].dataset.update(data_root=data_root, ann_file=ann_file,
                                   data_prefix=dict(img=''))
    cfg.val_dataloader.dataset.pipeline = val_pipeline
    cfg.test_dataloader.dataset.pipeline = val_pipeline
    cfg.train_dataloader.dataset.pipeline = train_pipeline
    for evaluator in ('val_evaluator', 'test_evaluator'):
        cfg[evaluator].ann_file = f'{data_root}/{ann_file}'
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    cfg.default_hooks.update(
        checkpoint=dict(type='CheckpointHook', interval=1),
        logger=dict(type='LoggerHook', interval=1))
    cfg.randomness = dict(seed=0)
    cfg.dump(str(path))
    return metric


def check_ok(result):
    assert result.returncode == 0, (result.stdout[-3000:] +
                                    result.stderr[-3000:])
    return result.stdout + result.stderr


@pytest.mark.parametrize('name', sorted(EXCERPTS))
def test_train_validate_and_test_on_the_excerpt(name, tmp_path):
    config = tmp_path / 'tiny.py'
    metric = tiny_config(name, config)
    work_dir = tmp_path / 'work'
    log = check_ok(run_tool(['tools/train.py', str(config), '--work-dir',
                             str(work_dir)]))
    # Every loss term is logged and finite for each iteration; the
    # validation after the epoch evaluated the excerpt.
    for term in ('loss_kpt', 'loss_kpt_highres', 'loss_pull', 'loss_push'):
        values = re.findall(rf'\b{term}: (\S+)', log)
        assert values, term
        assert all(math.isfinite(float(v)) for v in values), (term, values)
    assert f'{metric}: ' in log
    checkpoint = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    assert any(k.startswith('backbone.local_transformer.layers.0.self_attn')
               for k in checkpoint['state_dict'])

    if name != 'coco':
        return  # the validation above ran the same test loop; one is enough
    out = tmp_path / 'metrics.json'
    check_ok(run_tool(['tools/test.py', str(config),
                       str(work_dir / 'epoch_1.pth'), '--work-dir',
                       str(tmp_path / 'test'), '--out', str(out)]))
    metrics = json.loads(out.read_text())
    assert metric in metrics
    assert all(-1.0 <= v <= 1.0 for v in metrics.values())

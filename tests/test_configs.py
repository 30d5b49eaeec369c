"""Every config loads and builds; the quickstart changes only data,
schedule and input size of the recipe it inherits."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmpose.registry import MODELS

from conftest import QUICKSTART_CONFIG, REPO

CONFIGS = sorted(p for p in (REPO / 'configs').rglob('*.py')
                 if '_base_' not in p.parts)


def test_every_family_has_configs():
    assert len([p for p in CONFIGS if p.parent.name == 'transpose']) == 6


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_config_builds(path: Path):
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'TopdownPoseEstimator'
    assert cfg.custom_imports['imports'] == ['sspose_mm']
    assert cfg.test_dataloader.dataset.pipeline, 'test pipeline missing'
    assert cfg.default_hooks.checkpoint.save_best == 'coco/AP'
    hook_types = [h['type'] for h in cfg.custom_hooks]
    assert 'PlainCheckpointHook' in hook_types
    codec = cfg.model.head.decoder
    size = [s for s in cfg.train_dataloader.dataset.pipeline
            if s['type'] == 'TopdownAffine'][0]['input_size']
    assert tuple(codec.input_size) == tuple(size)


def test_quickstart_keeps_the_r_a3_model():
    quick = Config.fromfile(QUICKSTART_CONFIG)
    recipe = Config.fromfile(
        REPO / 'configs/transpose/td-hm_transpose-r-a3_1xb28-230e_coco-256x192.py')
    assert quick.model.neck == recipe.model.neck
    backbone = dict(quick.model.backbone, init_cfg=None)
    assert backbone == dict(recipe.model.backbone, init_cfg=None)
    head = {k: v for k, v in quick.model.head.items() if k != 'decoder'}
    assert head == {k: v for k, v in recipe.model.head.items()
                    if k != 'decoder'}
    assert quick.model.head.decoder.sigma == recipe.model.head.decoder.sigma
    assert quick.model.test_cfg == recipe.model.test_cfg

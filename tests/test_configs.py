"""Every TransPose COCO config (and the synthetic quickstart) loads and
builds; the quickstart changes only data, schedule and input size of the
recipe it inherits. Other families and datasets test their own configs."""
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmpose.registry import MODELS

from sspose_mm.errors import ConfigError
from conftest import QUICKSTART_CONFIG, REPO, coco_excerpt_options

CONFIGS = sorted(
    p for p in (REPO / 'configs/transpose').glob('*.py')
    if p.stem.endswith(('_coco-256x192', '_synthetic-clean-96x72')))


def test_every_transpose_variant_has_a_config():
    # Five paper variants and the quickstart.
    assert len(CONFIGS) == 6


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_config_builds(path: Path):
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'TopdownPoseEstimator'
    assert cfg.custom_imports['imports'] == ['sspose_mm']
    assert cfg.test_dataloader.dataset.pipeline, 'test pipeline missing'
    assert cfg.default_hooks.checkpoint.save_best == 'coco/AP'
    codec = cfg.model.head.decoder
    for pipeline in (cfg.train_dataloader.dataset.pipeline,
                     cfg.test_dataloader.dataset.pipeline):
        crop, = [s for s in pipeline if s['type'] == 'TransPoseAffine']
        assert tuple(crop.input_size) == tuple(codec.input_size)
        assert tuple(crop.heatmap_size) == tuple(codec.heatmap_size)


PACKAGE_HOOKS = dict(
    checkpoint='AtomicCheckpointHook',
    sync_buffers='SyncBuffersHook',
    plain_checkpoint='PlainCheckpointHook',
    exact_resume='ExactResumeHook',
    nan_guard='NanGuardHook',
    matmul_precision='MatmulPrecisionHook')
EVERY_CONFIG = sorted(
    p for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.parts)


@pytest.mark.parametrize(
    'path', EVERY_CONFIG, ids=lambda p: str(p.relative_to(REPO / 'configs')))
def test_every_config_keeps_the_package_hooks(path: Path):
    """Plain checkpoints, exact resume and the NaN guard are default hooks,
    so a config listing its own custom_hooks cannot drop them, and none
    registers one twice."""
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['sspose_mm']
    for key, hook_type in PACKAGE_HOOKS.items():
        assert cfg.default_hooks[key]['type'] == hook_type, key
    custom = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert not set(custom) & set(PACKAGE_HOOKS.values()), custom


def test_a_package_hook_switches_off_under_mmengine_alone(tmp_path):
    """default_hooks.nan_guard.enable=False, as the runtime base documents,
    with mmengine's Runner alone: the hook is there but does nothing (a NaN
    loss passes), and None keeps removing mmengine's own defaults."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(QUICKSTART_CONFIG)
    cfg.merge_from_dict(
        dict(
            coco_excerpt_options(), **{
                'default_hooks.nan_guard.enable': False,
                'default_hooks.timer': None
            }))
    cfg.work_dir = str(tmp_path)
    hooks = {type(h).__name__: h for h in Runner.from_cfg(cfg).hooks}
    assert 'IterTimerHook' not in hooks
    assert {'ExactResumeHook', 'PlainCheckpointHook'} <= set(hooks)
    hooks['NanGuardHook'].after_train_iter(
        None, 0, outputs={'loss': torch.tensor(float('nan'))})


def test_none_for_a_package_hook_says_how_to_switch_it_off():
    """mmengine's Runner stops with a bare AssertionError on it."""
    from sspose_mm.cli import load_config
    with pytest.raises(
            ConfigError,
            match=re.escape(
                'default_hooks.nan_guard=None: mmengine\'s Runner removes '
                'only its own default hooks (runtime_info, timer, '
                'sampler_seed, logger, param_scheduler, checkpoint) this way '
                'and stops on any other. Switch a hook off with '
                'default_hooks.nan_guard.enable=False where it has that '
                'argument')):
        load_config(
            str(QUICKSTART_CONFIG),
            dict(coco_excerpt_options(), **{'default_hooks.nan_guard': None}))


def test_quickstart_keeps_the_r_a3_model():
    quick = Config.fromfile(QUICKSTART_CONFIG)
    recipe = Config.fromfile(
        REPO /
        'configs/transpose/td-hm_transpose-r-a3_1xb28-230e_coco-256x192.py')
    assert quick.model.neck == recipe.model.neck
    backbone = dict(quick.model.backbone, init_cfg=None)
    assert backbone == dict(recipe.model.backbone, init_cfg=None)
    head = {k: v for k, v in quick.model.head.items() if k != 'decoder'}
    assert head == {
        k: v
        for k, v in recipe.model.head.items() if k != 'decoder'
    }
    assert quick.model.head.decoder.sigma == recipe.model.head.decoder.sigma
    assert quick.model.test_cfg == recipe.model.test_cfg

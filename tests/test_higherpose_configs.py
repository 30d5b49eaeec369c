"""Every HigherPose config builds, and its sizes and keypoints agree: the
training targets at 1/4 and 1/2 of the input, grouping at the input size,
the learned position tables at the training size, decode orders that are
permutations of the dataset's keypoints."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.registry import DATASETS, MODELS

from conftest import REPO

CONFIGS = sorted((REPO / 'configs/higherpose').glob('*.py'))
QUICKSTART = REPO / ('configs/higherpose/'
                     'ae_higherpose-w32_2xb8-4e_synthetic-128x128.py')


def test_every_setting_has_a_config():
    # COCO and CrowdPose at 512 and 256, the quickstart, and COCO and
    # CrowdPose at 512 with the released attention and with the released
    # square test input.
    assert len(CONFIGS) == 9


def step(pipeline, name):
    steps = [s for s in pipeline if s['type'] == name]
    assert len(steps) == 1, name
    return steps[0]


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: p.name)
def test_config_builds_with_consistent_sizes(path: Path):
    cfg = Config.fromfile(path)
    width, height = cfg.model.backbone.input_size
    assert path.stem.endswith(f'-{height}x{width}')
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'BottomupPoseEstimator'
    assert cfg.custom_imports['imports'] == ['sspose_mm']

    target = step(cfg.train_dataloader.dataset.pipeline,
                  'GenerateTarget').encoder
    assert tuple(target.input_size) == (width, height)
    assert tuple(target.heatmap_size) == (width // 4, height // 4)
    assert [tuple(s) for s in target.higher_heatmap_sizes] == [(width // 2,
                                                                height // 2)]
    affine = step(cfg.train_dataloader.dataset.pipeline,
                  'BottomupRandomAffine')
    resize, = [
        s for s in cfg.test_dataloader.dataset.pipeline
        if s['type'] in ('BottomupResize', 'BottomupSquareResize')
    ]
    assert tuple(affine.input_size) == tuple(
        resize.input_size) == (width, height)
    decoder = cfg.model.head.decoder
    assert tuple(decoder.heatmap_size) == (width, height)
    assert not decoder.higher_heatmap_sizes
    assert cfg.model.test_cfg.restore_heatmap_size

    metainfo = parse_pose_metainfo(
        DATASETS.get(cfg.train_dataloader.dataset.type).METAINFO)
    num_keypoints = metainfo['num_keypoints']
    assert model.head.num_keypoints == num_keypoints
    assert sorted(decoder.decode_keypoint_order) == list(range(num_keypoints))

    learned = model.backbone.local_transformer.pos_embedding
    if learned is not None:
        assert learned.shape[2:] == (height // 4, width // 4)
        assert model.backbone.global_transformer.pos_embedding.shape[2:] == (
            height // 8, width // 8)


def test_quickstart_keeps_the_coco_recipe_model():
    quick = Config.fromfile(QUICKSTART)
    recipe = Config.fromfile(REPO / 'configs/higherpose' /
                             'ae_higherpose-w32_1xb12-300e_coco-256x256.py')
    ignored = ('input_size', 'init_cfg')
    assert ({
        k: v
        for k, v in quick.model.backbone.items() if k not in ignored
    } == {
        k: v
        for k, v in recipe.model.backbone.items() if k not in ignored
    })
    assert ({
        k: v
        for k, v in quick.model.head.items() if k != 'decoder'
    } == {
        k: v
        for k, v in recipe.model.head.items() if k != 'decoder'
    })
    assert quick.model.test_cfg == recipe.model.test_cfg
    assert quick.optim_wrapper == recipe.optim_wrapper

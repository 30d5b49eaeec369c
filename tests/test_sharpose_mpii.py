"""SHaRPose-B on MPII: the config is the COCO base recipe with 16 keypoints
(tokens, maps, MPII OKS sigmas in the quality target) and PCKh@0.5, and it
trains and validates through mmengine's Runner on the MPII excerpt
(tests/data/mpii, 5 people; head boxes synthesised as in
test_datasets_benchmarks) at a narrow width and depth."""
import re

import numpy as np
from mmengine.config import Config
from mmengine.runner import Runner
from mmpose.registry import DATASETS, METRICS, MODELS

from sspose_mm.cli.checks import check_config
from conftest import REPO
from test_datasets_benchmarks import headbox_file  # noqa: F401 (fixtures)
from test_datasets_benchmarks import on_excerpt, plain_config_text, runner_cfg

FOLDER = REPO / 'configs/sharpose'
MPII = FOLDER / 'td-hm_sharpose-b-a0.4_4xb64-210e_mpii-256x192.py'
COCO = FOLDER / 'td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192.py'
QUALITY_LOSS = re.compile(r'Epoch\(train\) \[1\]\[\d/3\].*?loss_quality: '
                          r'([\d.e-]+)')


def test_config_is_the_coco_base_recipe_with_16_keypoints(headbox_file):
    cfg = on_excerpt(MPII, headbox_file)
    coco = Config.fromfile(str(COCO))
    backbone = dict(cfg.model.backbone)
    assert backbone.pop('num_keypoints') == 16
    assert backbone == {
        k: v
        for k, v in coco.model.backbone.items() if k != 'num_keypoints'
    }
    head = cfg.model.head
    assert head.out_channels == 16
    assert head.metainfo.from_file == 'configs/_base_/datasets/mpii.py'
    for key in ('optim_wrapper', 'param_scheduler', 'train_cfg', 'codec',
                'custom_hooks'):
        assert cfg[key] == coco[key], key
    for phase in ('train', 'val'):
        assert (cfg[f'{phase}_dataloader'].dataset.pipeline ==
                coco[f'{phase}_dataloader'].dataset.pipeline)
    check_config(cfg, ['train', 'val'])  # dataset K = model K, files exist

    # The quality target's OKS uses the dataset's own sigmas, in its order.
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    sigmas = MODELS.build(head).oks_sigmas.numpy()
    np.testing.assert_array_equal(
        sigmas, np.asarray(dataset.metainfo['sigmas'], dtype=np.float32))
    assert dataset.metainfo['num_keypoints'] == 16

    metric = METRICS.build(cfg.val_evaluator)
    assert (type(metric).__name__, metric.thr,
            metric.norm_item) == ('MpiiPCKAccuracy', 0.5, ['head'])
    checkpoint = Config.fromfile(str(MPII)).default_hooks.checkpoint
    assert (checkpoint.save_best, checkpoint.rule) == ('PCK', 'greater')


def test_grids_and_sequences_stay_those_of_the_coco_base():
    """Spec 1.3/1.4 with K = 16: grids 8x6 / 16x12, k = ceil(0.4 * 48) =
    20, so sequences 1 + 16 + 48 coarse and 16 + 4 * 20 + 28 fine."""
    backbone = dict(
        Config.fromfile(str(MPII)).model.backbone,
        embed_dims=24,
        num_heads=2,
        depth=1,
        init_cfg=None)
    model = MODELS.build(backbone)
    assert model.grids == ((8, 6), (16, 12))
    assert tuple(model.keypoint_tokens.shape[:2]) == (1, 16)
    assert (model.coarse_sequence_length, model.fine_sequence_length) == (65,
                                                                          124)


def test_trains_and_validates_through_the_runner(headbox_file, tmp_path,
                                                 plain_config_text):
    """One epoch (5 people, batch 2: 3 iterations) and its validation at
    256x192 with a narrow ViT; quality loss on from epoch 1, so the MPII
    sigmas' OKS target is computed and trained on."""
    cfg = runner_cfg(on_excerpt(MPII, headbox_file), tmp_path)
    cfg.model.backbone.update(
        embed_dims=32, num_heads=2, depth=2, qp_start_epoch=0)
    cfg.model.head.update(in_channels=32, qp_start_epoch=0)
    cfg.train_cfg.update(max_epochs=1, val_interval=1)
    Runner.from_cfg(cfg).train()
    log = next(tmp_path.rglob('*.log')).read_text()
    losses = [float(value) for value in QUALITY_LOSS.findall(log)]
    assert len(losses) == 3 and all(value > 0 for value in losses)
    metrics_line, = [
        line for line in log.splitlines()
        if 'Epoch(val) [1][3/3]' in line and 'PCK' in line
    ]
    metrics = dict(
        field.strip().split(': ')
        for field in metrics_line.split('Epoch(val) [1][3/3]')[1].split('  ')
        if ': ' in field)
    assert 0 <= float(metrics['PCK']) <= 100
    assert {'Head PCK', 'Ankle PCK', 'PCK@0.1'} <= set(metrics)

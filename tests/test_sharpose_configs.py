"""SHaRPose configs state the official recipe (spec 1.3, 1.9; values from
the official configs, not from this implementation) and are consistent:
codec, crop, backbone resolution and head agree."""
import pytest
from mmengine.config import Config

from conftest import REPO

FOLDER = REPO / 'configs/sharpose'
# name: (embed dims, coarse (H, W), fine (H, W), heatmap (w, h), sigma,
#        alpha, qp_threshold, backbone / head qp_start_epoch, layer decay,
#        epochs, batch per GPU)
RECIPES = {
    'td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192.py':
        (768, (128, 96), (256, 192), (48, 64), 2, 0.4, 0.99, 180, 180, 0.75,
         210, 64),
    'td-hm_sharpose-b-a0.3_4xb64-210e_coco-384x288.py':
        (768, (192, 144), (384, 288), (72, 96), 3, 0.3, 1.2, 90, 180, 0.7,
         210, 64),
    'td-hm_sharpose-s-a0.5_4xb128-250e_coco-256x192.py':
        (384, (128, 96), (256, 192), (48, 64), 2, 0.5, 0.99, 210, 210, 0.8,
         250, 128),
}
QUICKSTART = 'td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-128x96.py'
SMALL = 'td-hm_sharpose-s-a0.5_4xb128-250e_coco-256x192.py'


def test_every_config_is_listed():
    assert sorted(p.name for p in FOLDER.glob('*.py')) == sorted(
        [*RECIPES, QUICKSTART])


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_official_recipe(name):
    (dims, coarse, fine, heatmap, sigma, alpha, threshold, backbone_start,
     head_start, decay, epochs, batch) = RECIPES[name]
    cfg = Config.fromfile(FOLDER / name)
    backbone, head = cfg.model.backbone, cfg.model.head
    assert (backbone.embed_dims, backbone.depth, backbone.num_heads) == (
        dims, 12, 12)
    assert tuple(map(tuple, backbone.img_sizes)) == (coarse, fine)
    assert (backbone.alpha, backbone.qp_threshold, backbone.qp_start_epoch,
            backbone.drop_path_rate) == (alpha, threshold, backbone_start, 0.1)
    assert head.in_channels == dims
    assert (head.quality_loss_weight, head.qp_start_epoch) == (0.03,
                                                              head_start)
    assert tuple(head.heatmap_size) == heatmap
    assert (cfg.codec.type, cfg.codec.sigma) == ('UDPHeatmap', sigma)
    assert backbone.init_cfg.type == 'Pretrained'
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, tuple(optimizer.betas),
            optimizer.weight_decay) == ('AdamW', 5e-4, (0.9, 0.999), 0.1)
    assert cfg.optim_wrapper.paramwise_cfg == dict(num_layers=12,
                                                   layer_decay_rate=decay)
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end,
            warmup.by_epoch) == ('LinearLR', 1e-3, 500, False)
    assert (steps.type, steps.milestones, steps.gamma) == ('MultiStepLR',
                                                           [170, 200], 0.1)
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.model.test_cfg.flip_test
    assert not cfg.model.test_cfg.shift_heatmap


@pytest.mark.parametrize('name', sorted([*RECIPES, QUICKSTART]))
def test_sizes_agree(name):
    cfg = Config.fromfile(FOLDER / name)
    codec = cfg.model.head.decoder
    fine_h, fine_w = cfg.model.backbone.img_sizes[1]
    assert tuple(codec.input_size) == (fine_w, fine_h)
    assert tuple(cfg.model.head.heatmap_size) == tuple(codec.heatmap_size)
    for pipeline in (cfg.train_dataloader.dataset.pipeline,
                     cfg.test_dataloader.dataset.pipeline):
        affine, = [s for s in pipeline if s['type'] == 'TopdownAffine']
        assert tuple(affine.input_size) == tuple(codec.input_size)
        assert affine.use_udp
    target, = [s for s in cfg.train_dataloader.dataset.pipeline
               if s['type'] == 'GenerateTarget']
    assert target.encoder == codec
    assert 'SHaRPoseQualityHook' in [h['type'] for h in cfg.custom_hooks]


def test_quickstart_keeps_the_small_model():
    quick = Config.fromfile(FOLDER / QUICKSTART).model
    small = Config.fromfile(FOLDER / SMALL).model
    changed = {'img_sizes', 'qp_start_epoch', 'init_cfg'}
    assert {k: v for k, v in quick.backbone.items() if k not in changed} == {
        k: v for k, v in small.backbone.items() if k not in changed}
    assert quick.backbone.init_cfg is None
    assert quick.head.loss == small.head.loss
    assert quick.head.in_channels == small.head.in_channels
    assert quick.test_cfg == small.test_cfg

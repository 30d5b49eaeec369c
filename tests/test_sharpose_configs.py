"""SHaRPose configs state the official recipe (spec 1.3, 1.9; values from
the official configs, not from this implementation) and are consistent:
codec, crop, backbone resolution and head agree."""
import numpy as np
import pytest
from mmengine.config import Config
from mmpose.registry import METRICS, TRANSFORMS

from conftest import REPO

FOLDER = REPO / 'configs/sharpose'
# name: (embed dims, coarse (H, W), fine (H, W), heatmap (w, h), sigma,
#        alpha, qp_threshold, backbone / head qp_start_epoch, layer decay,
#        epochs, batch per GPU)
RECIPES = {
    'td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192.py':
    (768, (128, 96), (256, 192), (48, 64), 2, 0.4, 0.99, 180, 180, 0.75, 210,
     64),
    'td-hm_sharpose-b-a0.3_4xb64-210e_coco-384x288.py':
    (768, (192, 144), (384, 288), (72, 96), 3, 0.3, 1.2, 90, 180, 0.7, 210,
     64),
    'td-hm_sharpose-s-a0.5_4xb128-250e_coco-256x192.py':
    (384, (128, 96), (256, 192), (48, 64), 2, 0.5, 0.99, 210, 210, 0.8, 250,
     128),
}
QUICKSTART = 'td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-128x96.py'
SMALL = 'td-hm_sharpose-s-a0.5_4xb128-250e_coco-256x192.py'
MPII = 'td-hm_sharpose-b-a0.4_4xb64-210e_mpii-256x192.py'

# Spec 1.9, the ViTPose-style 0.x pipeline of all three configs, in 0.x
# order: GetBboxCenterScale(padding 1.25), RandomShiftBboxCenter(0.16,
# p 0.3), RandomFlip(0.5), HalfBodyTransform(8 joints, p 0.3: applied to
# people with more than 8 visible joints), RandomScaleRotation(rot 40,
# scale 0.5), Affine(UDP). MMPose 0.x's RandomScaleRotation draws the scale
# as clip(N(1, 0.5), 0.5, 1.5) and the angle as clip(N(0, 40), -80, 80) with
# its default rot_prob 0.6; its half-body step takes the upper body with
# P(randn < 0.5) = 0.69 when it has at least 3 visible joints, and pads the
# part's box by 1.5. MMPose 1.x applies shift, scale and rotation in one
# step, after the half-body crop.
PIPELINE_ORDER = [
    'LoadImageOrSkip', 'GetBBoxCenterScale', 'RandomFlip', 'RandomHalfBody',
    'ClippedRandomBBoxTransform', 'TopdownAffine', 'GenerateTarget',
    'PackPoseInputs'
]
AUGMENTATION = {
    'GetBBoxCenterScale':
    dict(padding=1.25),
    'RandomFlip':
    dict(prob=0.5, direction='horizontal'),
    'RandomHalfBody':
    dict(
        min_total_keypoints=9,
        min_upper_keypoints=3,
        min_lower_keypoints=3,
        prob=0.3,
        upper_prioritized_prob=0.69,
        padding=1.5),
    'ClippedRandomBBoxTransform':
    dict(
        shift_factor=0.16,
        shift_prob=0.3,
        scale_factor=(0.5, 1.5),
        scale_prob=1.0,
        rotate_sigma=40,
        rotate_factor=80,
        rotate_prob=0.6),
}
# ImageNet mean and std of RGB in [0, 1] (spec 1.9: "normalize ImageNet
# mean/std"), on the 0-255 pixels that MMPose 1.x normalises.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255


def test_every_config_is_listed():
    assert sorted(p.name for p in FOLDER.glob('*.py')) == sorted(
        [*RECIPES, QUICKSTART, MPII])


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_official_recipe(name):
    (dims, coarse, fine, heatmap, sigma, alpha, threshold, backbone_start,
     head_start, decay, epochs, batch) = RECIPES[name]
    cfg = Config.fromfile(FOLDER / name)
    backbone, head = cfg.model.backbone, cfg.model.head
    assert (backbone.embed_dims, backbone.depth,
            backbone.num_heads) == (dims, 12, 12)
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
    assert cfg.optim_wrapper.paramwise_cfg == dict(
        num_layers=12, layer_decay_rate=decay)
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.start_factor, warmup.end,
            warmup.by_epoch) == ('LinearLR', 1e-3, 500, False)
    assert (steps.type, steps.milestones, steps.gamma) == ('MultiStepLR',
                                                           [170, 200], 0.1)
    assert cfg.train_cfg.max_epochs == epochs
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.model.test_cfg.flip_test
    assert not cfg.model.test_cfg.shift_heatmap


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_official_augmentation(name):
    """The built transforms (so defaults count) against spec 1.9."""
    cfg = Config.fromfile(FOLDER / name)
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [step['type'] for step in pipeline] == PIPELINE_ORDER
    for step in pipeline:
        if step['type'] in AUGMENTATION:
            transform = TRANSFORMS.build(step)
            for key, expected in AUGMENTATION[step['type']].items():
                assert getattr(transform, key) == expected, (step['type'], key)
    test_steps = [step['type'] for step in cfg.val_dataloader.dataset.pipeline]
    assert test_steps == [
        'LoadImageOrSkip', 'GetBBoxCenterScale', 'TopdownAffine',
        'PackPoseInputs'
    ]
    assert cfg.val_dataloader.dataset.pipeline[1].padding == 1.25
    preprocessor = cfg.model.data_preprocessor
    np.testing.assert_allclose(preprocessor.mean, IMAGENET_MEAN)
    np.testing.assert_allclose(preprocessor.std, IMAGENET_STD)
    assert preprocessor.bgr_to_rgb  # images load as BGR


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_official_evaluation(name):
    """Spec 1.2 and 1.9: COCO val with the person detections of AP 56 (no
    score threshold), OKS NMS at 0.9, keypoint scores above 0.2 rescore
    the box score; evaluation and checkpoints every 10 epochs, the best by
    AP kept."""
    cfg = Config.fromfile(FOLDER / name)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        dataset = loader.dataset
        assert dataset.type == 'CocoDataset'
        assert dataset.ann_file.endswith('person_keypoints_val2017.json')
        assert dataset.bbox_file.endswith(
            'COCO_val2017_detections_AP_H_56_person.json')
        assert dataset.get('filter_cfg', {}).get('bbox_score_thr') is None
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.ann_file.endswith('person_keypoints_val2017.json')
        # Built without its (absent) annotation file, for the defaults.
        metric = METRICS.build(dict(evaluator, ann_file=None))
        assert type(metric).__name__ == 'CocoMetric'
        assert (metric.nms_mode, metric.nms_thr) == ('oks_nms', 0.9)
        assert (metric.score_mode,
                metric.keypoint_score_thr) == ('bbox_keypoint', 0.2)
    assert cfg.train_cfg.val_interval == 10
    checkpoint = cfg.default_hooks.checkpoint
    assert (checkpoint.interval, checkpoint.save_best,
            checkpoint.rule) == (10, 'coco/AP', 'greater')


@pytest.mark.parametrize('name', sorted([*RECIPES, QUICKSTART, MPII]))
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
    target, = [
        s for s in cfg.train_dataloader.dataset.pipeline
        if s['type'] == 'GenerateTarget'
    ]
    assert target.encoder == codec
    assert 'SHaRPoseQualityHook' in [h['type'] for h in cfg.custom_hooks]


def test_quickstart_keeps_the_small_model():
    quick = Config.fromfile(FOLDER / QUICKSTART).model
    small = Config.fromfile(FOLDER / SMALL).model
    changed = {'img_sizes', 'qp_start_epoch', 'init_cfg'}
    assert {
        k: v
        for k, v in quick.backbone.items() if k not in changed
    } == {
        k: v
        for k, v in small.backbone.items() if k not in changed
    }
    assert quick.backbone.init_cfg is None
    assert quick.head.loss == small.head.loss
    assert quick.head.in_channels == small.head.in_channels
    assert quick.test_cfg == small.test_cfg

"""SSpose pose model: layer-wise lr decay, attention and dependency maps,
keypoint counts, input errors; the unlabeled-image dataset and its crop
(sizing: tests/test_sspose_sizing.py, the crop itself:
tests/test_sspose_crop.py)."""
import json

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmpose.registry import DATASETS, MODELS

from sspose_mm.apis import collect_attention, recording_attention
from sspose_mm.errors import CheckpointError, ConfigError, DataError
from sspose_mm.models.heads import SSposeHead
from conftest import COCO, REPO

CONFIGS = REPO / 'configs/sspose'
POSE_CONFIG = CONFIGS / 'td-hm_sspose-b_8xb64-210e_coco-256x192.py'
QUICKSTART = CONFIGS / 'td-hm_sspose-t_1xb8-10e_synthetic-128x96.py'


def pose_config(path=POSE_CONFIG) -> Config:
    cfg = Config.fromfile(path)
    cfg.model.backbone.init_cfg = None  # no pretraining file needed
    return cfg


@pytest.fixture(scope='module')
def small_model():
    cfg = pose_config(QUICKSTART)
    torch.manual_seed(0)
    return MODELS.build(cfg.model).eval()


@pytest.mark.parametrize('config', [QUICKSTART, POSE_CONFIG])
def test_layer_decay_gives_what_feeds_the_transformer_id_0(config):
    """MMPose's constructor with the official rule: id 0 for exactly the
    parameters the transformer input depends on (conv stages, embeddings,
    pos_embed and, with fusion before the transformer, the fusion convs),
    layers.i id i+1, the rest (final norm, head) the top id."""
    cfg = pose_config(config)
    assert cfg.model.backbone.fusion == 'before_transformer'
    cfg.model.backbone.img_size = (64, 48)  # a cheap forward for the graph
    model = MODELS.build(cfg.model).eval()
    depth = cfg.model.backbone.depths[-1]
    rate = cfg.optim_wrapper.paramwise_cfg.layer_decay_rate
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    scale = {
        name: group['lr'] / base_lr
        for group in wrapper.optimizer.param_groups
        for name in group['param_names']
    }
    assert len(scale) == sum(1 for p in model.parameters() if p.requires_grad)

    transformer_input = []
    model.backbone.layers[0].register_forward_pre_hook(
        lambda layer, args: transformer_input.append(args[0]))
    model.backbone(torch.randn(1, 3, 64, 48))
    transformer_input[0].sum().backward()
    feeding = {
        'backbone.' + name
        for name, param in model.backbone.named_parameters()
        if param.grad is not None
    }
    assert 'backbone.patch_embed.fusion.stage1.weight' in feeding
    assert {
        name
        for name, value in scale.items()
        if value == pytest.approx(rate**(depth + 1))
    } == feeding
    for name, value in scale.items():
        if name.startswith('backbone.layers.'):
            layer = int(name.split('.')[2])
            assert value == pytest.approx(rate**(depth - layer)), name
        elif name not in feeding:
            assert name.split('.')[:2] in (['backbone',
                                            'norm'], ['head', 'deconv_layers'],
                                           ['head', 'final_layer']), name
            assert value == 1., name


def test_attention_of_every_layer_is_collected(small_model):
    inputs = torch.randn(1, 3, 128, 96)
    maps = collect_attention(small_model, inputs)
    assert [m.shape for m in maps] == [(1, 192, 192)] * 4
    torch.testing.assert_close(maps[-1].sum(-1), torch.ones(1, 192))
    with torch.no_grad():
        plain = small_model(inputs, None, mode='tensor')
    with recording_attention(small_model), torch.no_grad():
        recorded = small_model(inputs, None, mode='tensor')
    assert torch.equal(plain, recorded)


def test_keypoint_dependency_is_the_attention_row_at_the_peak():
    heatmaps = torch.zeros(1, 2, 32, 24)
    heatmaps[0, 0, 9, 5] = 1  # token (4, 2) of a 16x12 grid
    heatmaps[0, 1, 31, 23] = 1  # token (15, 11)
    attention = torch.rand(1, 192, 192).softmax(-1)
    dependency = SSposeHead.keypoint_dependency(heatmaps, attention, (16, 12))
    assert dependency.shape == (1, 2, 16, 12)
    assert torch.equal(dependency[0, 0].flatten(), attention[0, 4 * 12 + 2])
    assert torch.equal(dependency[0, 1].flatten(), attention[0, 191])
    with pytest.raises(ValueError, match='token grid'):
        SSposeHead.keypoint_dependency(heatmaps, attention, (8, 6))


@pytest.mark.parametrize('num_keypoints', [16, 21])
def test_keypoint_count_comes_from_the_config(num_keypoints):
    cfg = pose_config(QUICKSTART)
    cfg.model.head.out_channels = num_keypoints
    cfg.model.backbone.img_size = (64, 48)
    model = MODELS.build(cfg.model).eval()
    with torch.no_grad():
        heatmaps = model(torch.randn(1, 3, 64, 48), None, mode='tensor')
    assert heatmaps.shape == (1, num_keypoints, 16, 12)


def test_bad_settings_are_refused_and_fusion_can_be_off(small_model):
    backbone = dict(pose_config(QUICKSTART).model.backbone)
    with pytest.raises(ConfigError, match='not divisible by the total'):
        MODELS.build(dict(backbone, img_size=(130, 96)))
    with pytest.raises(ConfigError, match='fusion must be one of'):
        MODELS.build(dict(backbone, fusion='middle'))
    with pytest.raises(ValueError, match=r'img_size \(128, 96\)'):
        small_model.backbone(torch.randn(1, 3, 96, 96))
    # The official fine-tuning trunk: no fusion convolutions at all.
    plain = MODELS.build(dict(backbone, fusion='none'))
    assert plain.fusion is None and plain.patch_embed.fusion is None
    assert not any('fusion.' in k for k in plain.state_dict())


def test_unloadable_position_tables_are_explained():
    """A checkpoint of another width is named as such (no grid resizing
    could fit it); a table of the right width but a token count that is no
    grid of this aspect ratio nor square cannot be resized."""
    backbone_cfg = dict(pose_config(QUICKSTART).model.backbone)
    backbone = MODELS.build(backbone_cfg)
    wider = MODELS.build(dict(backbone_cfg, embed_dims=(64, 128, 240)))
    with pytest.raises(
            CheckpointError,
            match="embedding width 240 differs from this "
            "model's 192"):
        backbone.load_state_dict(wider.state_dict())
    state = backbone.state_dict()
    state['pos_embed'] = torch.zeros(1, 10, 192)  # neither 4:3 nor square
    with pytest.raises(CheckpointError, match='aspect ratio of'):
        backbone.load_state_dict(state)


def test_missing_encoder_checkpoint_is_explained():
    """Also what to do when the encoder comes through load_from, which the
    runner reads after this initialisation."""
    cfg = Config.fromfile(QUICKSTART)
    cfg.model.backbone.img_size = (64, 48)
    model = MODELS.build(cfg.model)
    with pytest.raises(CheckpointError) as error:
        model.init_weights()
    assert 'run the pretraining config' in str(error.value)
    assert ('set model.backbone.init_cfg=None to start from scratch or to '
            'load the encoder with load_from') in str(error.value)


def test_unlabeled_images_from_a_coco_file_and_a_folder(tmp_path):
    coco = COCO
    images = json.loads((coco / 'test_coco.json').read_text())['images']
    pipeline = [
        dict(type='LoadImage'),
        dict(type='RandomResizedCrop', input_size=(48, 64)),
        dict(type='PackPoseInputs')
    ]
    from_json = DATASETS.build(
        dict(
            type='UnlabeledImageDataset',
            data_root=str(coco),
            ann_file='test_coco.json',
            pipeline=pipeline))
    assert len(from_json) == len(images)
    sample = from_json[0]
    assert sample['inputs'].shape == (3, 64, 48)
    from_folder = DATASETS.build(
        dict(type='UnlabeledImageDataset', data_prefix=dict(img=str(coco))))
    assert sorted(d['img_path'] for d in from_folder) == sorted(
        str(coco / i['file_name']) for i in images)
    with pytest.raises(DataError, match='found no images'):
        DATASETS.build(
            dict(
                type='UnlabeledImageDataset',
                data_prefix=dict(img=str(tmp_path))))
    with pytest.raises(DataError, match='does not exist'):
        DATASETS.build(
            dict(
                type='UnlabeledImageDataset',
                data_prefix=dict(img=str(tmp_path / 'none'))))


# Each pretraining config and the pose config that fine-tunes its encoder.
CONFIG_PAIRS = [
    ('mae_sspose-b_8xb64-800e_coco-256x192.py',
     'td-hm_sspose-b_8xb64-210e_coco-256x192.py'),
    ('mae_sspose-t_1xb16-20e_synthetic-128x96.py',
     'td-hm_sspose-t_1xb8-10e_synthetic-128x96.py'),
    ('mae_sspose-convvit-b_24xb128-800e_in1k-224.py',
     'td-hm_sspose-convvit-b_8xb64-210e_coco-256x192.py'),
]
# Backbone settings that may differ between pretraining and fine-tuning.
FINE_TUNING_ONLY = ('init_cfg', 'drop_path_rate', 'trainable_pos_embed',
                    'img_size')


@pytest.mark.parametrize('pretrain,pose', CONFIG_PAIRS)
def test_pose_configs_fine_tune_their_pretraining_encoder(pretrain, pose):
    mae_cfg, pose_cfg = (
        Config.fromfile(CONFIGS / name) for name in (pretrain, pose))
    assert mae_cfg.model.type == 'SSposeMAE'
    assert pose_cfg.model.type == 'TopdownPoseEstimator'
    for cfg in (mae_cfg, pose_cfg):
        assert cfg.custom_imports['imports'] == ['sspose_mm']
    mae_backbone, pose_backbone = ({
        k: v
        for k, v in cfg.model.backbone.items() if k not in FINE_TUNING_ONLY
    } for cfg in (mae_cfg, pose_cfg))
    assert mae_backbone == pose_backbone
    assert pose_cfg.model.backbone.init_cfg.prefix == 'backbone.'
    assert (pose_cfg.model.head.in_channels ==
            pose_cfg.model.backbone.embed_dims[-1])
    assert (pose_cfg.optim_wrapper.paramwise_cfg.num_layers ==
            pose_cfg.model.backbone.depths[-1])
    hooks = [h['type'] for h in mae_cfg.custom_hooks]
    assert {'EncoderCheckpointHook', 'ReconstructionVisHook'} <= set(hooks)

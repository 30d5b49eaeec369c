"""SSpose MAE pretraining as an mmengine job, and fine-tuning from it.

The quickstart pretraining config (tiny encoder), shrunk to 64x48 crops,
runs through ``tools/train.py`` for 30 iterations on 8 synthetic scenes; its
two hooks write reconstruction pictures and encoder checkpoints, and the
quickstart pose config (128x96) initialises its backbone from such a
checkpoint, its position embedding resized from 8x6 to 16x12.
"""
import json
import re
from types import SimpleNamespace

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmpose.registry import MODELS

from sspose_mm.engine.hooks import EncoderCheckpointHook
from sspose_mm.errors import ConfigError
from sspose_mm.fileio import safe_torch_load
from sspose_mm.models.utils import resize_position_embedding
from sspose_mm.synthetic import ensure_synthetic_coco
from conftest import COCO, REPO, as_cli, run_tool

PRETRAIN_CONFIG = 'configs/sspose/mae_sspose-t_1xb16-20e_synthetic-128x96.py'
POSE_CONFIG = 'configs/sspose/td-hm_sspose-t_1xb8-10e_synthetic-128x96.py'
EPOCHS = 15  # of 2 iterations: 8 images, batch 4
PRETRAIN_CONFIGS = [
    'configs/sspose/mae_sspose-b_8xb64-800e_coco-256x192.py', PRETRAIN_CONFIG,
    'configs/sspose/mae_sspose-convvit-b_24xb128-800e_in1k-224.py'
]


@pytest.mark.parametrize('config', PRETRAIN_CONFIGS)
def test_pretraining_decays_weight_matrices_only(config):
    """The official recipe's AdamW groups (timm's ``add_weight_decay``): no
    weight decay on 1-D parameters and biases (the packed attention
    ``in_proj_bias`` included), the configured 0.05 on everything else."""
    cfg = Config.fromfile(REPO / config)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {
        id(param): group['weight_decay']
        for group in wrapper.optimizer.param_groups
        for param in group['params']
    }
    base = cfg.optim_wrapper.optimizer.weight_decay
    assert base == 0.05
    trainable = [(name, param) for name, param in model.named_parameters()
                 if param.requires_grad]
    assert len(decay) == len(trainable)
    for name, param in trainable:
        flat = param.ndim == 1 or name.endswith('.bias')
        assert decay[id(param)] == (0. if flat else base), name


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    synthetic = tmp_path_factory.mktemp('synthetic')
    ensure_synthetic_coco(synthetic, splits={'train': 8})
    work_dir = tmp_path_factory.mktemp('mae')
    options = {
        'train_dataloader.dataset.data_root': str(synthetic),
        'train_dataloader.batch_size': 4,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_cfg.max_epochs': EPOCHS,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': EPOCHS,
        'model.backbone.img_size': '"(64,48)"',
        'train_dataloader.dataset.pipeline.1.input_size': '"(48,64)"',
    }
    result = run_tool(
        ['tools/train.py', PRETRAIN_CONFIG, '--work-dir',
         str(work_dir)] + as_cli(options))
    assert result.returncode == 0, (
        result.stdout[-3000:] + result.stderr[-3000:])
    return work_dir


@pytest.mark.slow
def test_loss_falls(pretrained):
    (log, ) = pretrained.glob('*/vis_data/scalars.json')
    losses = [
        json.loads(line)['loss'] for line in log.read_text().split('\n')
        if '"loss"' in line
    ]
    assert len(losses) == 2 * EPOCHS
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    # Norm-pix MSE starts near 1 (unit-variance targets, small predictions);
    # on 8 images 30 steps learn at least the coarse content. Random crops
    # make single losses noisy, hence means of 5; measured ~0.6x.
    assert last < 0.85 * first, losses


@pytest.mark.slow
def test_encoder_checkpoints_hold_the_backbone_only(pretrained):
    saved = sorted(p.name for p in pretrained.glob('encoder_*.pth'))
    assert saved == [f'encoder_epoch_{e}.pth' for e in (10, 15, 5)]
    checkpoint = torch.load(
        pretrained / f'encoder_epoch_{EPOCHS}.pth', weights_only=True)
    assert checkpoint['meta']['epoch'] == EPOCHS
    assert checkpoint['meta']['iter'] == 2 * EPOCHS
    full = torch.load(
        pretrained / f'epoch_{EPOCHS}.pth', weights_only=True)['state_dict']
    backbone = {k: v for k, v in full.items() if k.startswith('backbone.')}
    assert set(checkpoint['state_dict']) == set(backbone)
    assert all(
        torch.equal(v, backbone[k])
        for k, v in checkpoint['state_dict'].items())


@pytest.mark.slow
def test_reconstruction_pictures(pretrained):
    (picture, ) = pretrained.glob(
        f'*/vis_data/vis_image/reconstruction_{2 * EPOCHS}.png')
    image = cv2.imread(str(picture))
    # 4 rows (batch 4) x 4 columns of 64x48 with 2-pixel gaps.
    assert image.shape == (4 * 66 - 2, 4 * 50 - 2, 3)
    # Gaps are white, the cells are not blank.
    assert (image[64:66] == 255).all() and (image[:, 48:50] == 255).all()
    assert image[:64, :48].std() > 5


@pytest.mark.slow
def test_pose_model_loads_every_encoder_key(pretrained):
    """The fine-tuning config's backbone init_cfg (Pretrained, prefix
    backbone.) fills every backbone tensor; a strict load finds no missing
    and no unexpected key. Pretrained at 64x48, the 8x6 position table is
    resized to the 16x12 grid of the 128x96 pose model."""
    path = pretrained / f'encoder_epoch_{EPOCHS}.pth'
    encoder = safe_torch_load(str(path))['state_dict']
    cfg = Config.fromfile(REPO / POSE_CONFIG)
    cfg.model.backbone.init_cfg.checkpoint = str(path)
    model = MODELS.build(cfg.model)
    stripped = {k[len('backbone.'):]: v for k, v in encoder.items()}
    result = model.backbone.load_state_dict(stripped, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for param in model.backbone.parameters():
        torch.nn.init.zeros_(param)
    model.init_weights()
    state = model.state_dict()
    assert all(
        torch.equal(state[k], v) for k, v in encoder.items()
        if k != 'backbone.pos_embed')
    assert torch.equal(
        state['backbone.pos_embed'],
        resize_position_embedding(encoder['backbone.pos_embed'], (8, 6),
                                  (16, 12)))
    # The fine-tuning model learns its position embedding.
    assert model.backbone.pos_embed.requires_grad


@pytest.mark.slow
@pytest.mark.parametrize('loading', ['init_cfg', 'load_from'])
def test_fine_tunes_from_the_encoder_checkpoint(pretrained, tmp_path, loading):
    """Two training iterations and a COCO evaluation of the pose model on
    the real COCO excerpt, starting from the pretrained encoder given as the
    backbone's init_cfg or (with init_cfg=None, docs/sspose.md) load_from."""
    coco = COCO
    encoder = pretrained / f'encoder_epoch_{EPOCHS}.pth'
    options = ({
        'model.backbone.init_cfg.checkpoint': str(encoder)
    } if loading == 'init_cfg' else {
        'load_from': str(encoder),
        'model.backbone.init_cfg': None
    })
    options.update({
        'train_cfg.max_epochs': 1,
        'train_cfg.val_interval': 1,
        'default_hooks.logger.interval': 1
    })
    for loader in ('train', 'val'):
        options.update({
            f'{loader}_dataloader.dataset.data_root': str(coco),
            f'{loader}_dataloader.dataset.ann_file': 'test_coco.json',
            f'{loader}_dataloader.dataset.data_prefix.img': '',
            f'{loader}_dataloader.batch_size': 6,
            f'{loader}_dataloader.num_workers': 0,
            f'{loader}_dataloader.persistent_workers': False
        })
    options['val_dataloader.dataset.bbox_file'] = None
    options['val_evaluator.ann_file'] = str(coco / 'test_coco.json')
    result = run_tool(
        ['tools/train.py', POSE_CONFIG, '--work-dir',
         str(tmp_path)] + as_cli(options))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    if loading == 'init_cfg':
        assert f'load backbone. in model from: {encoder}' in log
        assert 'do not match exactly' not in log  # mmengine's mismatch note
    else:
        assert f'Load checkpoint from {encoder}' in log
        # mmengine's mismatch note: only the head, which the encoder
        # checkpoint cannot hold, is missing; no shape differs.
        (missing, ) = re.findall(r'missing keys in source state_dict: (.*)',
                                 log)
        assert all(k.startswith('head.') for k in missing.split(', '))
        assert 'unexpected key' not in log and 'size mismatch' not in log
    assert 'coco/AP' in log


def test_encoder_checkpoints_by_iteration(tmp_path):
    """``by_epoch=False``: every ``interval`` iterations and the last one
    (a stand-in runner: the hook reads only these attributes)."""
    model = torch.nn.Module()
    model.backbone = torch.nn.Linear(2, 2)
    model.decoder = torch.nn.Linear(2, 2)
    runner = SimpleNamespace(
        model=model,
        work_dir=str(tmp_path),
        epoch=0,
        max_iters=7,
        logger=MMLogger.get_current_instance())
    hook = EncoderCheckpointHook(interval=3, by_epoch=False)
    for runner.iter in range(7):
        hook.after_train_iter(runner, runner.iter)
        hook.after_train_epoch(runner)  # by iteration: never saves
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'encoder_iter_3.pth', 'encoder_iter_6.pth', 'encoder_iter_7.pth'
    ]
    checkpoint = torch.load(tmp_path / 'encoder_iter_7.pth', weights_only=True)
    assert set(
        checkpoint['state_dict']) == {'backbone.weight', 'backbone.bias'}
    assert checkpoint['meta']['iter'] == 7
    with pytest.raises(ConfigError, match='no parameters named'):
        EncoderCheckpointHook(prefix='encoder.').save(runner, 1, 7)

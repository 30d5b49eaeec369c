"""SHaRPose modules on small random models: token bookkeeping, region
selection, the gate, the quality loss and its epoch switch, layer-wise lr
decay, MAE loading, the checkpoint layout and bad configurations.

Expected values come from the SHaRPose spec's upstream facts (and the issue)
or from independent recomputation in the test, never from a run of this
implementation.
"""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData, PixelData
from mmpose.codecs import UDPHeatmap
from mmpose.registry import MODELS
from mmpose.structures import PoseDataSample

from sspose_mm.apis import collect_attention, recording_attention
from sspose_mm.apis.convert import convert_state_dict
from sspose_mm.engine.hooks import SHaRPoseQualityHook
from sspose_mm.errors import CheckpointError, ConfigError
from conftest import REPO

COCO_META = dict(from_file='configs/_base_/datasets/coco.py')
# COCO's OKS sigmas (cocodataset.org keypoint evaluation), 17 keypoints.
COCO_SIGMAS = np.array([
    .26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87,
    .87, .89, .89
]) / 10.0


def tiny_backbone(**overrides) -> dict:
    """A small SHaRPoseViT: 128x96 input, 4x3 coarse / 8x6 fine patches."""
    return dict(
        dict(
            type='SHaRPoseViT',
            img_sizes=((64, 48), (128, 96)),
            num_keypoints=17,
            embed_dims=32,
            depth=4,
            num_heads=4,
            drop_path_rate=0.,
            alpha=0.5,
            qp_start_epoch=1), **overrides)


def tiny_model(backbone: dict = None, **head) -> torch.nn.Module:
    codec = dict(
        type='UDPHeatmap',
        input_size=(96, 128),
        heatmap_size=(24, 32),
        sigma=2)
    model = MODELS.build(
        dict(
            type='TopdownPoseEstimator',
            backbone=backbone or tiny_backbone(),
            head=dict(
                dict(
                    type='SHaRPoseHead',
                    in_channels=32,
                    out_channels=17,
                    heatmap_size=(24, 32),
                    decoder=codec,
                    metainfo=COCO_META,
                    qp_start_epoch=2), **head)))
    torch.manual_seed(0)
    model.backbone.init_weights()
    # The official init leaves tokens and position embeddings at zero, which
    # makes all keypoint tokens (and rows of attention) identical; random
    # values make the ranking depend on which rows are summed.
    with torch.no_grad():
        for name, param in model.backbone.named_parameters():
            if 'token' in name or 'pos_embed' in name:
                param.normal_(std=0.5)
    return model


@pytest.fixture(scope='module')
def model() -> torch.nn.Module:
    return tiny_model().eval()


def images(batch: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(
        batch, 3, 128, 96, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('config,coarse,fine', [
    ('td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192.py', 66, 125),
    ('td-hm_sharpose-b-a0.3_4xb64-210e_coco-384x288.py', 126, 224),
    ('td-hm_sharpose-s-a0.5_4xb128-250e_coco-256x192.py', 66, 137),
])
def test_sequence_lengths_of_the_configs(config, coarse, fine):
    """Lengths from the spec: 1 + 17 + N0 coarse; 17 + 4k + (N0 - k) fine.
    Measured at the blocks' inputs of a narrow copy of each config (the
    lengths do not depend on width or depth)."""
    cfg = Config.fromfile(REPO / 'configs/sharpose' / config).model.backbone
    cfg.update(embed_dims=24, num_heads=2, depth=2, init_cfg=None)
    backbone = MODELS.build(cfg).eval()
    backbone.train_epoch = 0  # validation before qp_start_epoch: all refine
    lengths = []
    for block in backbone.blocks:
        block.register_forward_pre_hook(
            lambda _m, args: lengths.append(args[0].shape[1]))
    with torch.no_grad():
        backbone(torch.zeros(1, 3, *cfg.img_sizes[1]))
    assert lengths == [coarse] * 2 + [fine] * 2
    assert (backbone.coarse_sequence_length,
            backbone.fine_sequence_length) == (coarse, fine)


@pytest.mark.parametrize('score_all_keypoints', [False, True])
def test_selection_picks_highest_scoring_patches(score_all_keypoints):
    """The selected patches are the top ceil(alpha * N0) by the keypoint
    attention accumulated (EMA 0.99, blocks depth//4..) over the coarse
    pass, recomputed here from the recorded attention maps; the official
    rows skip the last keypoint, the switch uses all."""
    model = tiny_model(
        tiny_backbone(depth=8,
                      score_all_keypoints=score_all_keypoints)).eval()
    backbone = model.backbone
    backbone.train_epoch = 0
    with recording_attention(model) as maps, torch.no_grad():
        feats = backbone(images(3))
    ema = torch.zeros(())
    for attention in maps[8 // 4:8]:  # coarse pass: the first 8 maps
        ema = 0.99 * ema + 0.01 * attention
    rows = slice(1, 18) if score_all_keypoints else slice(1, 17)
    scores = ema[:, rows, 18:].sum(dim=1)
    torch.testing.assert_close(feats.patch_scores, scores, rtol=0, atol=1e-7)
    k = math.ceil(0.5 * 12)
    assert feats.selected_patches.shape == (3, k)
    for row, selected in zip(scores, feats.selected_patches):
        unselected = sorted(set(range(12)) - set(selected.tolist()))
        assert row[selected].min() > row[unselected].max()


def test_selected_count_rounds_alpha_times_n0_as_the_official_code():
    """The official k is ceil(alpha * N0) with N0 = h0 * w0 computed first.
    On a 12x10 coarse grid with alpha 0.05 the other float order
    (alpha * h0) * w0 gives 6.000000000000001 and so one patch more."""
    alpha, h0, w0 = 0.05, 12, 10
    assert math.ceil(alpha * h0 * w0) == 7  # the case discriminates
    expected = math.ceil(alpha * (h0 * w0))
    assert expected == 6
    backbone = MODELS.build(
        tiny_backbone(
            img_sizes=((4 * h0, 4 * w0), (8 * h0, 8 * w0)),
            patch_size=4,
            alpha=alpha,
            depth=1)).eval()
    backbone.train_epoch = 0  # validation before qp_start_epoch: all refine
    with torch.no_grad():
        feats = backbone(torch.randn(1, 3, 8 * h0, 8 * w0))
    assert feats.selected_patches.shape == (1, expected)
    assert backbone.fine_sequence_length == 17 + 4 * expected + (
        h0 * w0 - expected)


def test_fine_sequence_reassembles_the_selected_regions(model):
    """Fine pass input: the keypoint tokens, then for each selected coarse
    patch its 2x2 fine patches (fine embedding plus the same reused coarse
    feature on all four), then the other coarse patches as coarse input
    embeddings. Rebuilt here from the modules' parts."""
    backbone = model.backbone
    backbone.train_epoch = 0
    x = images(2)
    captured = {}

    def keep(name, tensor):  # hooks must return None to change nothing
        captured.setdefault(name, tensor)

    handles = [
        backbone.norm.register_forward_hook(
            lambda _m, _a, out: keep('coarse_out', out)),
        backbone.blocks[0].register_forward_pre_hook(
            lambda _m, args: keep(args[0].shape[1], args[0])),
    ]
    try:
        with torch.no_grad():
            feats = backbone(x)
    finally:
        for handle in handles:
            handle.remove()
    fine_input = captured[backbone.fine_sequence_length]
    k = backbone.num_selected
    with torch.no_grad():
        coarse_embed = backbone.patch_embed(
            F.interpolate(x, size=(64, 48),
                          mode='bilinear')) + backbone.pos_embed_list[0]
        fine_embed = backbone.patch_embed(x) + backbone.pos_embed_list[1]
        reused = backbone.reuse_block(captured['coarse_out'][:, 18:])
    torch.testing.assert_close(fine_input[:, :17],
                               backbone.keypoint_tokens.expand(2, -1, -1))
    for b in range(2):
        selected = feats.selected_patches[b].tolist()
        fine = fine_input[b, 17:17 + 4 * k].reshape(4, k, -1)
        for i, patch in enumerate(selected):
            r, c = divmod(patch, 3)  # coarse grid 4x3, fine grid 8x6
            cells = [(2 * r, 2 * c), (2 * r, 2 * c + 1), (2 * r + 1, 2 * c),
                     (2 * r + 1, 2 * c + 1)]
            for offset, (fr, fc) in enumerate(cells):
                torch.testing.assert_close(
                    fine[offset, i],
                    fine_embed[b, fr * 6 + fc] + reused[b, patch])
        rest = sorted(set(range(12)) - set(selected))
        torch.testing.assert_close(
            fine_input[b, 17 + 4 * k:].sort(dim=0).values,
            coarse_embed[b, rest].sort(dim=0).values)


def test_gated_off_instances_keep_coarse_results(model):
    backbone = model.backbone
    x = images(4)
    backbone.train_epoch = 0  # gate off: every instance refined
    with torch.no_grad():
        ungated = backbone(x)
    backbone.train_epoch = None  # standalone test: gate on
    backbone.qp_threshold = float(ungated.quality.median())
    try:
        with torch.no_grad():
            gated = backbone(x)
            coarse, fine = model.head.forward_stages(gated)
    finally:
        backbone.qp_threshold = 0.99
    mask = gated.refine_mask
    assert mask.tolist() == (ungated.quality
                             < ungated.quality.median()).tolist()
    assert 0 < mask.sum() < 4
    assert torch.equal(gated.fine_tokens[~mask], gated.coarse_tokens[~mask])
    assert torch.equal(fine[~mask], coarse[~mask])
    # Refined instances get what they get without the gate (another batch
    # composition: float round-off only).
    torch.testing.assert_close(
        gated.fine_tokens[mask], ungated.fine_tokens[mask], rtol=0, atol=1e-5)
    assert gated.selected_patches.shape == (int(mask.sum()),
                                            backbone.num_selected)


@pytest.mark.parametrize(
    'training,train_epoch,gated',
    [
        (True, 5, False),  # training forwards are never gated
        (False, 1, False),  # validation up to qp_start_epoch (1): all refined
        (False, 2, True),  # validation after it: gated
        (False, None, True),  # standalone testing: gated
    ])
def test_gate_modes(model, training, train_epoch, gated):
    backbone = model.backbone
    backbone.train(training)
    backbone.train_epoch = train_epoch
    backbone.qp_threshold = -math.inf  # a gate that refines nobody
    try:
        with torch.no_grad():
            feats = backbone(images(2))
    finally:
        backbone.eval()
        backbone.qp_threshold = 0.99
    assert feats.refine_mask.tolist() == [not gated] * 2
    if gated:
        assert torch.equal(feats.fine_tokens, feats.coarse_tokens)


def about_the_hook(records) -> list:
    return [
        r.getMessage() for r in records
        if 'SHaRPoseQualityHook' in r.getMessage()
    ]


def test_training_without_the_epoch_hook_warns_once(logged_warnings):
    """train_epoch None gates training forwards (official rule); the first
    training forward of such a model says so and names the hook."""
    model = tiny_model()
    backbone = model.backbone.eval()
    with torch.no_grad():
        backbone(images(1))  # standalone test: gated as intended, no warning
    assert about_the_hook(logged_warnings) == []
    backbone.train()
    with torch.no_grad():
        for _ in range(2):
            backbone(images(1))
    warning, = about_the_hook(logged_warnings)
    assert 'train_epoch None' in warning


def test_training_with_the_epoch_hook_does_not_warn(logged_warnings):
    model = tiny_model().train()
    SHaRPoseQualityHook().before_train_epoch(
        SimpleNamespace(model=model, epoch=0))
    with torch.no_grad():
        model.backbone(images(1))
    assert about_the_hook(logged_warnings) == []


def test_quality_activation_switch():
    x = torch.randn(64, 1, 32) * 3
    official = MODELS.build(tiny_backbone()).quality_predictor
    bounded = MODELS.build(tiny_backbone(
        quality_activation='sigmoid')).quality_predictor
    bounded.load_state_dict(official.state_dict())
    with torch.no_grad():
        logits = official.mlp[:-1](official.norm(x.mean(1)))[:, 0]
        torch.testing.assert_close(official(x), F.gelu(logits))
        torch.testing.assert_close(bounded(x), torch.sigmoid(logits))


def data_samples(batch: int, seed: int = 0) -> list:
    """Samples as the training pipeline packs them: UDP targets of random
    keypoints in the 96x128 input, crop boxes in pixels."""
    codec = UDPHeatmap(input_size=(96, 128), heatmap_size=(24, 32), sigma=2)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(batch):
        keypoints = rng.uniform([5, 5], [90, 120], (1, 17, 2))
        visible = (rng.uniform(size=(1, 17)) > 0.2).astype(np.float32)
        encoded = codec.encode(keypoints, visible)
        sample = PoseDataSample(
            metainfo=dict(
                input_center=rng.uniform(100, 300, 2).astype(np.float32),
                input_scale=np.array([150., 200.], dtype=np.float32)))
        sample.gt_fields = PixelData(
            heatmaps=torch.from_numpy(encoded['heatmaps']))
        sample.gt_instance_labels = InstanceData(
            keypoint_weights=torch.from_numpy(encoded['keypoint_weights']))
        samples.append(sample)
    return samples


def test_quality_loss_zero_before_its_epoch_and_on_after():
    """Head qp_start_epoch 2: epochs 1-2 (1-based, set by the hook) have a
    zero quality loss that still reaches the quality predictor (zero
    gradients, as the official 0 x MSE; DDP needs every parameter used),
    epoch 3 a positive one."""
    model = tiny_model().train()
    hook = SHaRPoseQualityHook()
    inputs, samples = images(4), data_samples(4)
    last_layer = model.backbone.quality_predictor.mlp[6].weight
    for epoch, active in ((0, False), (1, False), (2, True)):
        hook.before_train_epoch(SimpleNamespace(model=model, epoch=epoch))
        assert model.head.train_epoch == model.backbone.train_epoch == (
            epoch + 1)
        model.zero_grad()
        losses = model(inputs, samples, mode='loss')
        losses['loss_quality'].backward()
        assert last_layer.grad is not None
        if active:
            assert losses['loss_quality'] > 0
            assert last_layer.grad.abs().max() > 0
        else:
            assert losses['loss_quality'] == 0
            assert last_layer.grad.abs().max() == 0
    assert set(losses) >= {
        'loss_kpt_coarse', 'loss_kpt_fine', 'loss_quality', 'oks_coarse',
        'refine_rate', 'acc_pose'
    }
    assert losses['refine_rate'] == 1  # training is never gated


def peaked(locations, shape=(32, 24)) -> torch.Tensor:
    """(K, h, w) maps with a single positive peak at each (x, y); None gives
    an all-negative map."""
    maps = torch.full((len(locations), *shape), -0.1)
    for k, location in enumerate(locations):
        if location is not None:
            maps[k, location[1], location[0]] = 1.
    return maps


@pytest.mark.parametrize('swapped', [True, False])
def test_quality_target_is_the_oks_of_the_coarse_argmax(swapped):
    """Hand-computed COCO OKS of heatmap-argmax positions mapped to pixels of
    a 150x200 crop box; with the official quirk x is scaled by 150/32 (box
    width / heatmap height) and y by 200/24, else by 150/24 and 200/32."""
    head = tiny_model(oks_swap_heatmap_axes=swapped).head
    target = peaked([(10, 20)] * 17)
    prediction = peaked([(13, 16)] * 15 + [None, (0, 0)])
    weights = torch.ones(2, 17)
    weights[0, 16] = 0  # the far-off last keypoint does not count
    weights[1] = 0  # no visible keypoint: not a valid instance
    oks, valid = head.instance_oks(
        torch.stack([prediction, prediction]), torch.stack([target, target]),
        weights, torch.tensor([[150., 200.], [150., 200.]]))
    scale_x, scale_y = (150 / 32, 200 / 24) if swapped else (150 / 24,
                                                             200 / 32)
    area = 150. * 200.
    per_keypoint = []
    for k in range(16):
        # Keypoint 15's map has no positive value: position (-1, -1).
        dx, dy = ((-1 - 10), (-1 - 20)) if k == 15 else (3, -4)
        d2 = (dx * scale_x)**2 + (dy * scale_y)**2
        variance = (2 * COCO_SIGMAS[k])**2
        per_keypoint.append(math.exp(-d2 / (2 * area * variance)))
    assert valid.tolist() == [True, False]
    assert oks[0].item() == pytest.approx(np.mean(per_keypoint), rel=1e-5)


def test_layer_decay_groups_follow_the_official_rule():
    """Spec 1.9: 14 layer ids; 0 for tokens, position and patch
    embeddings, i + 1 for block i, 13 for everything else; lr scale
    0.75 ** (13 - id); no weight decay for 1-D parameters, biases, tokens and
    position embeddings."""
    model = tiny_model(tiny_backbone(depth=12))
    cfg = Config.fromfile(REPO / 'configs/sharpose/'
                          'td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192.py')
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {
        name: group
        for group in wrapper.optimizer.param_groups
        for name in group['param_names']
    }
    assert set(groups) == {n for n, _ in model.named_parameters()}
    expected = {  # name: (layer id, weight decay)
        'backbone.keypoint_tokens': (0, 0.), 'backbone.quality_token': (0, 0.),
        'backbone.pos_embed_list.0': (0, 0.),
        'backbone.pos_embed_list.1': (0, 0.),
        'backbone.patch_embed.proj.weight': (0, 0.1),
        'backbone.patch_embed.proj.bias': (0, 0.),
        'backbone.blocks.0.attn.qkv.weight': (1, 0.1),
        'backbone.blocks.0.attn.qkv.bias': (1, 0.),
        'backbone.blocks.5.norm1.weight': (6, 0.),
        'backbone.blocks.11.mlp.fc2.weight': (12, 0.1),
        'backbone.norm.weight': (13, 0.),
        'backbone.reuse_block.1.fc1.weight': (13, 0.1),
        'backbone.quality_predictor.mlp.6.weight': (13, 0.1),
        'head.heatmap_mlp.1.weight': (13, 0.1),
        'head.heatmap_mlp.1.bias': (13, 0.),
    }
    for name, (layer, decay) in expected.items():
        group = groups[name]
        assert group['lr'] == pytest.approx(5e-4 * 0.75**(13 - layer)), name
        assert group['weight_decay'] == decay, name


def test_mae_weights_load_with_resized_position_embeddings(tmp_path):
    """A timm/MAE ViT checkpoint: blocks, patch embedding and norm load by
    name; the 4x4 (+ class) position table is resized bicubically to each
    grid; its keypoint tokens (if any) and decoder are ignored."""
    from timm.models.vision_transformer import VisionTransformer
    vit = VisionTransformer(
        img_size=64,
        patch_size=16,
        embed_dim=32,
        depth=4,
        num_heads=4,
        qkv_bias=True)
    weights = {f'module.{k}': v for k, v in vit.state_dict().items()}
    weights['module.keypoint_tokens'] = torch.ones(1, 17, 32)
    weights['module.decoder_embed.weight'] = torch.ones(8, 32)
    path = tmp_path / 'mae.pth'
    torch.save({'model': weights}, path)
    backbone = MODELS.build(
        tiny_backbone(init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    backbone.init_weights()
    ours = backbone.state_dict()
    for key in ('blocks.3.attn.qkv.weight', 'blocks.0.mlp.fc1.bias',
                'patch_embed.proj.weight', 'norm.weight'):
        assert torch.equal(ours[key], vit.state_dict()[key]), key
    grid = vit.pos_embed[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    for stage, size in enumerate(((4, 3), (8, 6))):
        expected = F.interpolate(
            grid, size=size, mode='bicubic', align_corners=False)
        torch.testing.assert_close(ours[f'pos_embed_list.{stage}'],
                                   expected.flatten(2).transpose(1, 2))
    assert not ours['keypoint_tokens'].any()

    missing = MODELS.build(
        tiny_backbone(
            init_cfg=dict(
                type='Pretrained', checkpoint=str(tmp_path / 'nowhere.pth'))))
    with pytest.raises(CheckpointError, match='nowhere.pth does not exist'):
        missing.init_weights()


def official_layout(model) -> dict:
    """Our state dict under the official TopDown names."""
    renamed = {'head.': 'keypoint_head.'}
    return {
        renamed.get(k[:5], k[:5]) + k[5:]: v
        for k, v in model.state_dict().items()
    }


def test_layout_converts_and_refuses_wrong_keys(model):
    official = official_layout(model)
    converted, layout, dropped = convert_state_dict(official)
    assert (layout, dropped) == ('sharpose', [])
    assert converted.keys() == model.state_dict().keys()
    incomplete = dict(official)
    del incomplete['backbone.blocks.2.attn.proj.bias']
    incomplete['backbone.cls_token'] = torch.zeros(1, 1, 32)
    with pytest.raises(CheckpointError) as error:
        convert_state_dict(incomplete, 'sharpose')
    assert 'backbone.blocks.2.attn.proj.bias' in str(error.value)
    assert 'backbone.cls_token' in str(error.value)


@pytest.mark.parametrize('backbone,head,message', [
    (dict(img_sizes=((64, 48), (96, 96))), {}, 'twice the coarse'),
    (dict(img_sizes=((60, 48), (120, 96))), {}, 'multiples of patch_size'),
    (dict(alpha=0), {}, 'alpha'),
    (dict(quality_activation='relu'), {}, 'quality_activation'),
    ({}, dict(out_channels=16), '16 OKS sigmas'),
    ({}, dict(metainfo=None), 'needs metainfo'),
])
def test_bad_configurations_are_named(backbone, head, message):
    with pytest.raises(ConfigError, match=message):
        tiny_model(tiny_backbone(**backbone), **head)


def test_keypoint_count_mismatch_is_named():
    model = tiny_model(tiny_backbone(num_keypoints=16)).eval()
    with pytest.raises(ConfigError, match='16 keypoint tokens'):
        model(images(1), None, mode='tensor')


@pytest.mark.slow
def test_benchmark_forces_the_refine_rates(model):
    """The sharpose-sparse suite's gate settings refine the share asked for,
    and its dense baseline runs the same modules on all fine patches."""
    from sspose_mm.benchmarks.sharpose import dense_forward, gated_forward
    x = images(4)
    with torch.no_grad():
        for rate in (0., 0.5, 1.):
            run, refined = gated_forward(model, x, rate)
            assert refined == rate
            assert run().shape == (4, 17, 32, 24)
        assert dense_forward(model, x).shape == (4, 17, 32, 24)
    model.backbone.qp_threshold = 0.99


def test_benchmark_macs_grow_with_refinement_and_count_attention():
    """The sharpose-sparse suite's MACs on the quickstart model (SHaRPose-S
    at 128x96, random weights): each refined instance adds its fine pass,
    with none refined it is cheaper than the dense ViT, and attention is
    counted: the fused kernel's count equals that of PyTorch's unfused math
    attention, whose matrix products the flop counter sees as such."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from sspose_mm.benchmarks.sharpose import (DENSE, build_model,
                                               compared_runs,
                                               macs_per_instance)
    model = build_model(
        str(REPO / 'configs/sharpose/td-hm_sharpose-s-a0.5_'
            '2xb8-12e_synthetic-128x96.py'))
    inputs = torch.randn(
        2,
        3,
        *model.backbone.img_sizes[1],
        generator=torch.Generator().manual_seed(0))
    runs = compared_runs(model, inputs)
    macs = macs_per_instance(runs, batch=2)
    none, half, full = (
        macs[f'SHaRPose, {share} refined'] for share in ('0%', '50%', '100%'))
    assert none < half < full
    assert none < macs[DENSE]
    with sdpa_kernel(SDPBackend.MATH):
        assert macs_per_instance(runs, batch=2) == macs


def test_collect_attention_returns_both_passes(model):
    """Through the estimator as a user calls it: the gated model (no
    training epoch, threshold above every quality) gives 4 coarse maps over
    1 + 17 + 12 tokens, then 4 fine maps over 17 + 4*6 + 6 tokens."""
    model.backbone.train_epoch = None
    model.backbone.qp_threshold = math.inf
    try:
        maps = collect_attention(model, images(2))
        with torch.no_grad():
            plain = model(images(2), None, mode='tensor')
        with recording_attention(model), torch.no_grad():
            recorded = model(images(2), None, mode='tensor')
    finally:
        model.backbone.qp_threshold = 0.99
    assert torch.equal(recorded, plain)  # recording changes nothing
    assert [tuple(m.shape)
            for m in maps] == [(2, 30, 30)] * 4 + [(2, 47, 47)] * 4
    for attention in maps:  # rows are softmax distributions
        torch.testing.assert_close(
            attention.sum(-1), torch.ones(attention.shape[:2]))

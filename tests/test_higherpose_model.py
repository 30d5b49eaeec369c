"""HigherPose backbone, head and codec: shapes, real spatial attention,
attention recording, initialisation, losses, keypoint counts other than
COCO's."""
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.structures import MultilevelPixelData, PoseDataSample

from sspose_mm.apis import collect_attention
from sspose_mm.models.backbones.higherpose_hrnet import \
    StructureAwareTransformer
from sspose_mm.models.utils import MultiheadSelfAttention
from conftest import REPO

CONFIG_DIR = REPO / 'configs/higherpose'
COCO_256 = CONFIG_DIR / 'ae_higherpose-w32_1xb12-300e_coco-256x256.py'
CROWDPOSE_512 = (
    CONFIG_DIR / 'ae_higherpose-w32_1xb12-300e_crowdpose-512x512.py')


def shallow_hrnet(config):
    """The config's HRNet with one module and one block per branch: same
    strides and widths, a fraction of the compute."""
    extra = Config.fromfile(config).model.backbone.extra
    for stage in ('stage2', 'stage3', 'stage4'):
        extra[stage].update(
            num_modules=1, num_blocks=(1, ) * extra[stage].num_branches)
    return extra


def build(config, **backbone):
    cfg = Config.fromfile(config)
    cfg.model.backbone.update(init_cfg=None, **backbone)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def test_shapes_at_256_with_the_coco_recipe():
    model = build(COCO_256)
    with torch.no_grad():
        feats = model.backbone(torch.randn(1, 3, 256, 256))
        quarter, tags, half = model.head.forward_stages(feats)
        heatmaps, grouped_tags = model.head(feats)
    assert [f.shape for f in feats] == [(1, 32, 64, 64)]
    assert quarter.shape == tags.shape == (1, 17, 64, 64)
    assert (half.shape == heatmaps.shape == grouped_tags.shape ==
            (1, 17, 128, 128))
    # The aggregated heatmaps are the mean of both resolutions.
    upsampled = torch.nn.functional.interpolate(
        quarter, size=(128, 128), mode='bilinear', align_corners=False)
    torch.testing.assert_close(heatmaps, (upsampled + half) / 2)


def test_shapes_at_512_and_non_square_with_crowdpose_learned_positions():
    """512x512 (16384 tokens at 1/4); a 192x256 input exercises the
    resizing of the learned tables (stored for 512). One transformer layer
    and one block per HRNet stage keep it quick on CPU: shapes depend on the
    strides, not on depth."""
    model = build(
        CROWDPOSE_512,
        num_layers=1,
        feedforward_channels=64,
        extra=shallow_hrnet(CROWDPOSE_512))
    assert model.backbone.local_transformer.pos_embedding.shape == (1, 32, 128,
                                                                    128)
    with torch.no_grad():
        for height, width in ((512, 512), (192, 256)):
            feats = model.backbone(torch.randn(1, 3, height, width))
            quarter, tags, half = model.head.forward_stages(feats)
            assert feats[0].shape == (1, 32, height // 4, width // 4)
            assert quarter.shape == tags.shape == (1, 14, height // 4,
                                                   width // 4)
            assert half.shape == (1, 14, height // 2, width // 2)


def test_input_not_divisible_by_32_is_refused():
    model = build(COCO_256, num_layers=1, extra=shallow_hrnet(COCO_256))
    with pytest.raises(ValueError, match='divisible by 32'):
        model.backbone(torch.randn(1, 3, 256, 200))


def local_transformer(layers=2):
    torch.manual_seed(0)
    return StructureAwareTransformer(
        num_layers=layers,
        embed_dims=32,
        num_heads=4,
        feedforward_channels=64,
        dropout=0.1,
        attn_drop=0.).eval()


def test_attention_mixes_image_positions():
    """A change at one position changes the output at every other one (a
    per-position network, or the released code's batch-wise attention that
    keeps position 0, would leave positions other than the changed one, resp.
    all but a shared offset, untouched)."""
    transformer = local_transformer()
    x = torch.randn(1, 32, 12, 16)
    changed = x.clone()
    changed[0, :, 11, 15] += 1.0
    with torch.no_grad():
        difference = (transformer(changed) - transformer(x)).abs().sum(1)[0]
    # Far beyond float32 round-off (1e-6) everywhere, the top-left corner
    # (farthest from the change) included.
    assert difference.min() > 1e-4
    assert difference[0, 0] > 1e-4


def test_images_of_a_batch_do_not_see_each_other():
    """The released code attends across the batch; here each image's output
    is the same alone or in a batch (eval mode)."""
    transformer = local_transformer()
    batch = torch.randn(3, 32, 8, 8)
    with torch.no_grad():
        together = transformer(batch)
        alone = torch.cat([transformer(image[None]) for image in batch])
    # Float32 round-off of different matmul batchings.
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_collect_attention_returns_both_transformers_maps():
    model = build(COCO_256, num_layers=2, extra=shallow_hrnet(COCO_256))
    inputs = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = model(inputs, None, mode='tensor')
    maps = collect_attention(model, inputs)
    assert sum(isinstance(m, MultiheadSelfAttention)
               for m in model.modules()) == 4
    # Global branch at 1/8 (8x12 = 96 tokens), local at 1/4 (16x24 = 384).
    assert [m.shape for m in maps] == [(2, 96, 96)] * 2 + [(2, 384, 384)] * 2
    for attention in maps:
        torch.testing.assert_close(
            attention.sum(-1), torch.ones(attention.shape[:2]))
    # Recording leaves the outputs bit for bit as they were.
    with torch.no_grad():
        again = model(inputs, None, mode='tensor')
    for before, after in zip(expected, again):
        assert torch.equal(before, after)


def test_added_parameters_match_the_spec_count():
    """The spec derives about 0.94M trainable parameters for the 6-layer SAT
    module (independent of the HRNet's depth)."""
    model = build(COCO_256, extra=shallow_hrnet(COCO_256))
    backbone = model.backbone
    added = sum(p.numel() for name, p in backbone.named_parameters()
                if name.split('.')[0] in ('global_reduction',
                                          'global_transformer',
                                          'global_upsample', 'fusion',
                                          'local_transformer'))
    assert 0.93e6 < added < 0.95e6


def test_transformer_matrices_get_xavier_of_their_own_shape():
    """The original's q, k, v, out and FFN layers are separate Linear
    layers, each xavier-uniform for its own shape: U(-b, b) with
    b = sqrt(6 / (fan_in + fan_out)). For the packed in_proj_weight that
    means each (C, C) block has b = sqrt(3 / C), not the sqrt(2) smaller
    bound of xavier on the (3C, C) matrix.

    Each matrix must stay within its bound, and the largest |w| of a role
    (pooled over the 6 layers) must come close to it: for n samples of
    U(-b, b), P(max |w| < 0.8 b) = 0.8^n, below 1e-9 for the smallest pool
    (6 layers x 4x4 = 96 weights of the global branch), whereas the packed
    bound is 0.707 b."""
    model = build(COCO_256, extra=shallow_hrnet(COCO_256))
    for transformer in (model.backbone.global_transformer,
                        model.backbone.local_transformer):
        roles = {}
        for layer in transformer.layers:
            q, k, v = layer.self_attn.in_proj_weight.detach().chunk(3)
            matrices = dict(
                q=q,
                k=k,
                v=v,
                out=layer.self_attn.out_proj.weight,
                ffn_in=layer.ffn[0].weight,
                ffn_out=layer.ffn[3].weight)
            for role, matrix in matrices.items():
                roles.setdefault(role, []).append(matrix.detach())
        for role, matrices in roles.items():
            fan_out, fan_in = matrices[0].shape
            bound = math.sqrt(6 / (fan_in + fan_out))
            largest = [m.abs().max().item() for m in matrices]
            # Relative slack for the float32 rounding of the bound.
            assert max(largest) <= bound * (1 + 1e-6), role
            assert max(largest) > 0.8 * bound, (role, max(largest) / bound)


def test_codec_floors_keypoints_into_heatmap_pixels():
    codec = KEYPOINT_CODECS.build(
        dict(
            type='MultiResolutionAssociativeEmbedding',
            input_size=(64, 64),
            heatmap_size=(16, 16),
            higher_heatmap_sizes=[(32, 32)],
            sigma=2))
    # x = 7.9 input px lies in 1/4 pixel 1 (4..8) and 1/2 pixel 3 (6..8);
    # rounding would give 2 and 4.
    keypoints = np.array([[[7.9, 20.0], [30.0, 2.0]]], np.float32)
    encoded = codec.encode(keypoints, np.ones((1, 2), np.float32))
    quarter, half = encoded['heatmaps']
    assert quarter.shape == (2, 16, 16) and half.shape == (2, 32, 32)
    assert np.unravel_index(quarter[0].argmax(), (16, 16)) == (5, 1)
    assert np.unravel_index(half[0].argmax(), (32, 32)) == (10, 3)
    assert encoded['keypoint_indices'][0, 0].tolist() == [5 * 16 + 1, 1]
    assert encoded['keypoint_indices'][0, 1].tolist() == [0 * 16 + 7, 1]


def training_sample(num_keypoints, size=64):
    """One packed sample with two people, as the training pipeline makes."""
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(4, size - 4, (2, num_keypoints, 2))
    codec = KEYPOINT_CODECS.build(
        dict(
            type='MultiResolutionAssociativeEmbedding',
            input_size=(size, size),
            heatmap_size=(size // 4, size // 4),
            higher_heatmap_sizes=[(size // 2, size // 2)],
            sigma=2))
    encoded = codec.encode(keypoints.astype(np.float32))
    sample = PoseDataSample()
    fields = MultilevelPixelData()
    fields.set_field(encoded['heatmaps'], 'heatmaps')
    fields.set_field([np.ones(h.shape[1:], bool) for h in encoded['heatmaps']],
                     'heatmap_mask')
    sample.gt_fields = fields.to_tensor()
    sample.gt_instance_labels = InstanceData(
        keypoint_indices=torch.from_numpy(encoded['keypoint_indices']),
        keypoint_weights=torch.from_numpy(encoded['keypoint_weights']))
    return sample


@pytest.mark.parametrize('num_keypoints', [16, 21])
def test_losses_train_heads_with_any_keypoint_count(num_keypoints):
    """All four losses are finite and one Adam step on the head lowers their
    weighted sum, for the datasets' other keypoint counts."""
    torch.manual_seed(0)
    head = MODELS.build(
        dict(
            type='HigherHRNetHead',
            in_channels=32,
            num_keypoints=num_keypoints))
    head.init_weights()
    feats = (torch.randn(2, 32, 16, 16), )
    samples = [training_sample(num_keypoints) for _ in range(2)]
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    totals = []
    for _ in range(4):
        losses = head.loss(feats, samples)
        assert set(losses) == {
            'loss_kpt', 'loss_kpt_highres', 'loss_pull', 'loss_push'
        }
        assert all(torch.isfinite(v) for v in losses.values())
        total = sum(losses.values())
        totals.append(total.item())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert totals[-1] < totals[0]
    # Tags come from the 1/4 branch and heatmaps at both resolutions.
    heatmaps, tags = head(feats)
    assert heatmaps.shape == tags.shape == (2, num_keypoints, 32, 32)


def test_loss_rejects_targets_of_the_wrong_size():
    head = MODELS.build(
        dict(type='HigherHRNetHead', in_channels=32, num_keypoints=17))
    samples = [training_sample(17, size=128)]
    with pytest.raises(ValueError, match='1/4 and 1/2 of the input size'):
        head.loss((torch.randn(1, 32, 16, 16), ), samples)


def test_flops_of_learned_positions_count_without_gradients():
    """tools/benchmark.py counts FLOPs with torch's FlopCounterMode under
    no_grad; with a learned table used at its stored size (the CrowdPose
    recipe at its input size) that used to fail inside torch's module
    tracker."""
    from torch.utils.flop_counter import FlopCounterMode
    torch.manual_seed(0)
    transformer = StructureAwareTransformer(
        1, 32, 4, 64, 0.1, 0., pos_embedding='learnable',
        grid_size=(8, 8)).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        transformer(torch.randn(1, 32, 8, 8))
    assert counter.get_total_flops() > 0


def test_unknown_position_embedding_is_refused():
    with pytest.raises(ValueError, match='sine'):
        StructureAwareTransformer(1, 32, 4, 64, 0.1, 0., pos_embedding='rope')
    with pytest.raises(ValueError, match='grid size'):
        StructureAwareTransformer(
            1, 32, 4, 64, 0.1, 0., pos_embedding='learnable')


@pytest.mark.parametrize('flip_test', [True, False])
def test_estimator_predicts_with_and_without_flip_test(flip_test):
    """The whole test path of the estimator (MMPose's BottomupPoseEstimator
    and our head) on a packed test sample, with the config's flip testing and
    with ``model.test_cfg.flip_test=False``."""
    from mmcv.transforms import Compose
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    from mmpose.registry import DATASETS

    model = build(COCO_256, extra=shallow_hrnet(COCO_256))
    model.test_cfg['flip_test'] = flip_test
    cfg = Config.fromfile(COCO_256)
    metainfo = parse_pose_metainfo(DATASETS.get('CocoDataset').METAINFO)
    packed = Compose(cfg.test_dataloader.dataset.pipeline[1:])(
        dict(
            img=np.random.default_rng(0).integers(0, 255, (240, 320, 3),
                                                  np.uint8),
            ori_shape=(240, 320),
            img_shape=(240, 320),
            flip_indices=metainfo['flip_indices']))
    with torch.no_grad():
        result, = model.predict(packed['inputs'][None].float(),
                                [packed['data_samples']])
    keypoints = result.pred_instances.keypoints
    assert keypoints.ndim == 3 and keypoints.shape[1:] == (17, 2)

"""TransPose modules: shapes, parameter counts, key layout, position encoding.

Expected parameter counts and key names come from the official model
definitions (issue text and tests/data/golden/transpose manifests), not from
this implementation.
"""
import json

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmpose.registry import MODELS

from sspose_mm.models.backbones import HRNetS
from sspose_mm.models.utils import (MultiheadSelfAttention,
                                    sine_position_embedding)
from conftest import GOLDEN, REPO

CONFIGS = {
    'transpose-r-a3': 'td-hm_transpose-r-a3_1xb28-230e_coco-256x192.py',
    'transpose-r-a4': 'td-hm_transpose-r-a4_1xb20-230e_coco-256x192.py',
    'transpose-h-s': 'td-hm_transpose-h-s_2xb16-240e_coco-256x192.py',
    'transpose-h-a4': 'td-hm_transpose-h-a4_1xb14-240e_coco-256x192.py',
    'transpose-h-a6': 'td-hm_transpose-h-a6_4xb14-240e_coco-256x192.py',
}
# Trainable parameters of the official models (the published 5.2/6.0/8.0/
# 17.3/17.5M also count the fixed sine table).
OFFICIAL_TRAINABLE = {
    'transpose-r-a3': 4_998_737,
    'transpose-r-a4': 5_788_497,
    'transpose-h-s': 7_822_673,
    'transpose-h-a4': 17_011_217,
    'transpose-h-a6': 17_160_785,
}


def build(variant: str):
    cfg = Config.fromfile(REPO / 'configs/transpose' / CONFIGS[variant])
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model)


def official_key(key: str) -> str:
    """Our key -> the official checkpoint key (prefix map of issue 3)."""
    module, rest = key.split('.', 1)
    if module == 'neck' and rest.startswith('layers.'):
        return 'global_encoder.' + rest
    return rest


@pytest.mark.parametrize('variant', sorted(CONFIGS))
def test_trainable_parameters_equal_official(variant):
    model = build(variant)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert count == OFFICIAL_TRAINABLE[variant]


@pytest.mark.parametrize('variant', sorted(CONFIGS))
def test_state_dict_matches_official_layout(variant):
    """Same tensors, names (up to the module prefix) and shapes as the
    official checkpoint; only the fixed sine table is not stored."""
    manifest = json.loads(
        (GOLDEN / 'transpose' / f'{variant}.manifest.json').read_text())
    official = {e['key']: tuple(e['shape']) for e in manifest['keys']}
    assert official.pop('pos_embedding')
    ours = {
        official_key(k): tuple(v.shape)
        for k, v in build(variant).state_dict().items()
    }
    assert ours == official


@pytest.mark.parametrize('variant', ['transpose-r-a3', 'transpose-h-s'])
@pytest.mark.parametrize('size', [(256, 192), (320, 224)])
def test_output_shapes(variant, size):
    model = build(variant).eval()
    with torch.no_grad():
        heatmaps = model(torch.randn(2, 3, *size), None, mode='tensor')
    assert heatmaps.shape == (2, 17, size[0] // 4, size[1] // 4)
    assert torch.isfinite(heatmaps).all()


@pytest.mark.parametrize('variant', sorted(CONFIGS))
def test_sine_position_embedding_equals_official_table(variant):
    golden = np.load(GOLDEN / 'transpose' / f'{variant}_seed0.npz')
    table = golden['fixed/pos_embedding'][:, 0]  # (h*w, 1, d) -> (h*w, d)
    stride = 8 if '-r-' in variant else 4
    h, w = 256 // stride, 192 // stride
    ours = sine_position_embedding(h, w, table.shape[1]).numpy()
    # Same float32 operations in the same order: equal to the last bit.
    np.testing.assert_array_equal(ours, table)


def test_position_embedding_follows_input_size():
    model = build('transpose-r-a3').eval()
    captured = []
    model.neck.layers[0].register_forward_hook(
        lambda m, args, out: captured.append(args[1]))
    with torch.no_grad():
        model(torch.randn(1, 3, 320, 224), None, mode='tensor')
    np.testing.assert_array_equal(captured[0].numpy(),
                                  sine_position_embedding(40, 28, 256).numpy())


def test_recording_attention_leaves_the_output_unchanged():
    """Recording computes the weights beside the fused kernel: the output is
    bit-identical and the weights are row-stochastic."""
    torch.manual_seed(0)
    attn = MultiheadSelfAttention(64, 8).eval()
    x, pos = torch.randn(2, 50, 64), torch.randn(50, 64)
    fused, none = attn(x + pos, x + pos, x)
    attn.record_attention = True
    recorded, weights = attn(x + pos, x + pos, x)
    assert none is None
    torch.testing.assert_close(recorded, fused, atol=0, rtol=0)
    assert weights.shape == (2, 50, 50)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 50))


def test_attention_matches_torch_multihead_attention():
    """Same parameters as nn.MultiheadAttention give the same output when
    positions are added to queries and keys only."""
    torch.manual_seed(0)
    ours = MultiheadSelfAttention(32, 4).eval()
    ref = torch.nn.MultiheadAttention(32, 4).eval()
    ref.load_state_dict(ours.state_dict())
    x, pos = torch.randn(3, 10, 32), torch.randn(10, 32)
    expected, expected_weights = ref((x + pos).transpose(0, 1),
                                     (x + pos).transpose(0, 1),
                                     x.transpose(0, 1))
    ours.record_attention = True
    out, weights = ours(x + pos, x + pos, x)
    torch.testing.assert_close(
        out, expected.transpose(0, 1), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(weights, expected_weights, atol=1e-6, rtol=1e-5)


def test_hrnet_s_rejects_stage4_and_freezes():
    cfg = Config.fromfile(REPO / 'configs/transpose' /
                          CONFIGS['transpose-h-s']).model.backbone
    extra = dict(cfg.extra)
    with pytest.raises(ValueError, match='stage 3'):
        HRNetS(dict(extra, stage4=extra['stage3']))
    frozen = HRNetS(extra, frozen_stages=3)
    assert not any(p.requires_grad for p in frozen.parameters())
    partly = HRNetS(extra, frozen_stages=1)
    assert not any(p.requires_grad for p in partly.layer1.parameters())
    assert all(p.requires_grad for p in partly.stage3.parameters())

"""The fast inference path gives the original computation's heatmaps:
batch-norm folding (found by data flow, transposed convolutions included),
channels-last, fused vs explicit attention."""
import pytest
import torch
import torch.nn.functional as F
from mmpose.apis import init_model
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sspose_mm.apis import convert_checkpoint
from sspose_mm.apis.fast_inference import (explicit_attention,
                                           fold_batch_norms, model_input_size,
                                           original_computation,
                                           prepare_for_inference)
from sspose_mm.benchmarks.core import randomise_norm_statistics
from sspose_mm.errors import ConfigError
from conftest import QUICKSTART_CONFIG, REPO
from test_models import CONFIGS
from test_transpose_parity import (golden, heatmap_tolerance, max_error,
                                   official_state_dict)

H_S_CONFIG = (
    REPO / 'configs/transpose/'
    'td-hm_transpose-h-s_2xb16-240e_coco-256x192.py')
# Folding rescales weights once (w * g / sqrt(v + eps)) instead of
# normalising activations: float32 round-off, ~1e-7 per layer, compounds to
# ~1e-6 of the output scale through these ~20-50 layers. A wrong or missed
# fold changes outputs by the order of their own scale (randomised norms).
FOLD_TOLERANCE = 1e-5


def heatmaps(model, x):
    with torch.no_grad():
        return model(x, None, mode='tensor')


def relative_difference(a, b):
    return float((a - b).abs().max() / b.abs().max())


def build(config, seed=0):
    model = init_model(str(config), None, device='cpu')
    randomise_norm_statistics(model, seed)
    return model.eval()


def count_norms(model):
    return sum(isinstance(m, _BatchNorm) for m in model.modules())


@pytest.mark.parametrize('config,size', [(QUICKSTART_CONFIG, (64, 48)),
                                         (H_S_CONFIG, (64, 48))])
def test_folding_every_norm_of_transpose_keeps_heatmaps(config, size):
    """TransPose-R (deconv + BN head) and -H (HRNet fuse layers): every
    batch norm follows a convolution, so all are folded."""
    model = build(config)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(1))
    expected = heatmaps(model, x)
    norms = count_norms(model)
    assert norms > 0
    assert fold_batch_norms(model, x[:1]) == norms
    assert count_norms(model) == 0
    assert relative_difference(heatmaps(model, x), expected) < FOLD_TOLERANCE


class Toy(nn.Module):
    """Grouped conv -> BN, grouped transposed conv -> BN, and one conv whose
    output feeds two norms (ambiguous: must not be folded)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.bn = nn.BatchNorm2d(6)
        self.up = nn.ConvTranspose2d(
            6, 4, 4, stride=2, padding=1, groups=2, bias=False)
        self.bn_up = nn.BatchNorm2d(4)
        self.shared = nn.Conv2d(4, 4, 1)
        self.bn_a = nn.BatchNorm2d(4)
        self.bn_b = nn.BatchNorm2d(4)

    def forward(self, x, data_samples=None, mode='tensor'):
        x = self.bn_up(self.up(torch.relu(self.bn(self.conv(x)))))
        shared = self.shared(x)
        return self.bn_a(shared) + self.bn_b(shared)


def test_folding_grouped_and_transposed_convs_and_skipping_shared_outputs():
    model = Toy()
    randomise_norm_statistics(model, seed=3)
    model.eval()
    x = torch.randn(2, 4, 8, 6)
    expected = heatmaps(model, x)
    assert fold_batch_norms(model, x) == 2
    assert isinstance(model.bn, nn.Identity)
    assert isinstance(model.bn_up, nn.Identity)
    assert isinstance(model.bn_a, nn.BatchNorm2d)
    assert isinstance(model.bn_b, nn.BatchNorm2d)
    assert relative_difference(heatmaps(model, x), expected) < FOLD_TOLERANCE


def test_folding_refuses_training_mode():
    with pytest.raises(ValueError, match='eval mode'):
        fold_batch_norms(Toy().train(), torch.randn(1, 4, 8, 6))


def test_fast_path_matches_original_computation():
    """prepare_for_inference (fold + channels-last) vs unfused attention and
    unfolded norms: the benchmark's two paths on the same weights."""
    model = build(QUICKSTART_CONFIG)
    x = torch.randn(2, 3, 64, 48, generator=torch.Generator().manual_seed(2))
    with original_computation():
        expected = heatmaps(model, x)
    fast = prepare_for_inference(model, (64, 48), channels_last=True)
    assert fast is model and count_norms(model) == 0
    assert relative_difference(heatmaps(fast, x), expected) < FOLD_TOLERANCE


OTHER_FAMILIES = {
    'sspose-t':
    ('configs/sspose/td-hm_sspose-t_1xb8-10e_synthetic-128x96.py', (128, 96)),
    'sharpose-s':
    ('configs/sharpose/'
     'td-hm_sharpose-s-a0.5_2xb8-12e_synthetic-128x96.py', (128, 96)),
    'higherpose': ('configs/higherpose/'
                   'ae_higherpose-w32_2xb8-4e_synthetic-128x128.py', (64, 64)),
}


@pytest.mark.parametrize('family', sorted(OTHER_FAMILIES))
def test_fast_path_of_the_other_families_matches(family):
    """The same two paths on SSpose (masked-conv stages, BN in the head),
    SHaRPose (two passes, no BN; its gate sees the same qualities up to
    round-off, far from its threshold untrained) and HigherPose (HRNet's
    norms everywhere; heatmaps and tags)."""
    config, size = OTHER_FAMILIES[family]
    model = build(REPO / config)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(4))
    with original_computation():
        expected = heatmaps(model, x)
    norms = count_norms(model)
    prepare_for_inference(model, size, channels_last=True)
    assert count_norms(model) < norms or norms == 0
    got = heatmaps(model, x)
    expected = expected if isinstance(expected, tuple) else (expected, )
    got = got if isinstance(got, tuple) else (got, )
    for fast, original in zip(got, expected):
        assert relative_difference(fast, original) < FOLD_TOLERANCE


@pytest.mark.parametrize('variant', ['transpose-r-a3'])
def test_both_paths_reproduce_official_heatmaps(variant, tmp_path):
    """Converted reference weights (trained-like norms): the fast path and
    the original computation both give the official model's heatmaps, with
    the tolerances of the parity tests."""
    official, converted = tmp_path / 'official.pth', tmp_path / 'ours.pth'
    torch.save(official_state_dict(variant), official)
    convert_checkpoint(str(official), str(converted))
    model = init_model(
        str(REPO / 'configs/transpose' / CONFIGS[variant]),
        str(converted),
        device='cpu').eval()
    data = golden(variant)
    x = torch.from_numpy(data['input'])
    tolerance = heatmap_tolerance(variant, data['heatmaps'])
    with original_computation():
        original = heatmaps(model, x)
    fast = heatmaps(prepare_for_inference(model), x)
    assert count_norms(model) == 0
    for result in (original, fast):
        assert max_error(result, data['heatmaps']) <= tolerance


def test_model_input_size_from_codec_and_error():
    model = init_model(str(QUICKSTART_CONFIG), None, device='cpu')
    # (H, W) of the quickstart codec's input_size (72, 96), which is (W, H)
    assert model_input_size(model) == (96, 72)
    with pytest.raises(ConfigError, match='input size'):
        model_input_size(Toy())


@pytest.mark.parametrize(
    'case', ['plain', 'bool_mask', 'float_mask', 'causal', 'scale'])
def test_explicit_attention_equals_fused(case):
    generator = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=generator) for _ in range(3))
    kwargs = {
        'plain': {},
        'bool_mask': {
            'attn_mask': torch.rand(7, 7, generator=generator) > .3
        },
        'float_mask': {
            'attn_mask': torch.randn(7, 7, generator=generator)
        },
        'causal': {
            'is_causal': True
        },
        'scale': {
            'scale': 0.3
        },
    }[case]
    if case == 'bool_mask':  # every query must see at least one key
        kwargs['attn_mask'][:, 0] = True
    expected = F.scaled_dot_product_attention(q, k, v, **kwargs)
    # Same float32 products summed in another order: round-off only.
    torch.testing.assert_close(
        explicit_attention(q, k, v, **kwargs), expected, rtol=1e-5, atol=1e-6)


def test_original_computation_swaps_attention_only_inside_the_block():
    fused = F.scaled_dot_product_attention
    with pytest.raises(RuntimeError, match='inside'):
        with original_computation():
            assert F.scaled_dot_product_attention is explicit_attention
            raise RuntimeError('inside')
    assert F.scaled_dot_product_attention is fused

"""The package's one attention module and one pre-norm ViT block against
the library modules they mirror (``nn.MultiheadAttention``, timm's
``Attention`` and ``Block``), on small random inputs."""
import pytest
import torch
from mmpose.registry import MODELS
from timm.models.vision_transformer import Attention, Block

from sspose_mm.errors import CheckpointError, ConfigError
from sspose_mm.models.utils import MultiheadSelfAttention, ViTBlock

# float32 of values around 1: the fused kernel and the reference sum in
# other orders, nothing else differs.
TOLERANCE = dict(rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('shared', ['key_value', 'none'])
def test_queries_keys_and_values_from_different_inputs(shared):
    """Keys and values from another input than the queries (HigherPose), or
    all three different: the same as ``nn.MultiheadAttention``."""
    torch.manual_seed(0)
    ours = MultiheadSelfAttention(32, 4).eval()
    ref = torch.nn.MultiheadAttention(32, 4, batch_first=True).eval()
    ref.load_state_dict(ours.state_dict())
    query, key = torch.randn(2, 10, 32), torch.randn(2, 10, 32)
    value = key if shared == 'key_value' else torch.randn(2, 10, 32)
    expected, expected_weights = ref(query, key, value)
    out, weights = ours(query, key, value, need_weights=True)
    torch.testing.assert_close(out, expected, **TOLERANCE)
    torch.testing.assert_close(weights, expected_weights, **TOLERANCE)


@pytest.mark.parametrize('qkv_bias', [True, False])
def test_timm_layout_is_timm_attention(qkv_bias):
    """``layout='timm'`` has the keys of timm's ViT attention and computes
    what it computes."""
    torch.manual_seed(0)
    ref = Attention(32, 4, qkv_bias=qkv_bias).eval()
    ours = MultiheadSelfAttention(
        32, 4, qkv_bias=qkv_bias, layout='timm').eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 10, 32)
    out, weights = ours(x)
    assert weights is None
    torch.testing.assert_close(out, ref(x), **TOLERANCE)


def test_unknown_layout_and_indivisible_heads_are_refused():
    with pytest.raises(ConfigError, match='layout'):
        MultiheadSelfAttention(32, 4, layout='mmcv')
    with pytest.raises(ConfigError, match='not divisible by num_heads 5'):
        MultiheadSelfAttention(32, 5)


def test_vit_block_is_timm_block():
    """With timm's names the block loads timm's ``Block`` strictly and
    computes what it computes (its eps 1e-6 is the default here too); the
    attention comes out beside the tokens."""
    torch.manual_seed(0)
    ref = Block(32, 4, qkv_bias=True).eval()
    ours = ViTBlock(32, 4, layout='timm').eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 10, 32)
    out, weights = ours(x, need_weights=True)
    torch.testing.assert_close(out, ref(x), **TOLERANCE)
    assert weights.shape == (2, 10, 10)


def test_vit_position_table_of_no_square_grid_is_refused(tmp_path):
    """A ViT checkpoint whose ``pos_embed`` is neither ``S*S`` nor
    ``1 + S*S`` positions cannot be resized: named, not reshaped."""
    path = tmp_path / 'vit.pth'
    torch.save({'model': {'pos_embed': torch.zeros(1, 1 + 14, 32)}}, path)
    backbone = MODELS.build(
        dict(
            type='SHaRPoseViT',
            img_sizes=((64, 48), (128, 96)),
            embed_dims=32,
            depth=2,
            num_heads=4,
            init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    with pytest.raises(CheckpointError, match='pos_embed has 15 positions'):
        backbone.init_weights()

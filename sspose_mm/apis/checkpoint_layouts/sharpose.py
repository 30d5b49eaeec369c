"""Official SHaRPose checkpoints (``AnxQ/sharpose``, MMPose 0.x ``TopDown``).

The backbone (:class:`~sspose_mm.models.backbones.SHaRPoseViT`) keeps the
official module names, so ``backbone.*`` keys stay as they are; the head's
``keypoint_head.heatmap_mlp.*`` becomes ``head.heatmap_mlp.*``
(:class:`~sspose_mm.models.heads.SHaRPoseHead`). Nothing is dropped. The
number of blocks is read from the keys and the head's one- or two-layer MLP
from its keys; widths and grids must match the config (a strict load says
where not).
"""
import re
from typing import Collection, Dict, List, Tuple

from torch import Tensor

from ..convert import CHECKPOINT_LAYOUTS, CheckpointLayout, rename

_PARAMS = ('weight', 'bias')
_BLOCK = ('norm1', 'attn.qkv', 'attn.proj', 'norm2', 'mlp.fc1', 'mlp.fc2')
_BACKBONE = ([
    'keypoint_tokens', 'quality_token', 'patch_embed.proj.weight',
    'patch_embed.proj.bias', 'pos_embed_list.0', 'pos_embed_list.1'
] + [
    f'{module}.{param}'
    for module in ('norm', 'reuse_block.0', 'reuse_block.1.fc1',
                   'reuse_block.1.fc2', 'quality_predictor.mlp.0',
                   'quality_predictor.mlp.3', 'quality_predictor.mlp.6',
                   'quality_predictor.norm') for param in _PARAMS
])
# heatmap_mlp: LN, Linear (one layer) or LN, Linear, GELU, LN, Linear.
_HEAD_LAYERS = {1: ('0', '1'), 2: ('0', '1', '3', '4')}
_BLOCK_INDEX = re.compile(r'backbone\.blocks\.(\d+)\.')


def expected_official_keys(depth: int, head_layers: int) -> List[str]:
    """Every official key for ``depth`` blocks and a one- or two-layer
    heatmap MLP."""
    blocks = [
        f'backbone.blocks.{i}.{module}.{param}' for i in range(depth)
        for module in _BLOCK for param in _PARAMS
    ]
    head = [
        f'keypoint_head.heatmap_mlp.{layer}.{param}'
        for layer in _HEAD_LAYERS[head_layers] for param in _PARAMS
    ]
    return [f'backbone.{key}' for key in _BACKBONE] + blocks + head


@CHECKPOINT_LAYOUTS.register_module('sharpose')
class SHaRPoseLayout(CheckpointLayout):
    """Official SHaRPose ``TopDown`` checkpoints -> ``TopdownPoseEstimator``
    with ``SHaRPoseViT`` and ``SHaRPoseHead``."""

    description = ('SHaRPose (coarse-to-fine ViT with keypoint tokens and '
                   'quality predictor, backbone.* + keypoint_head.*)')
    markers = ('backbone.pos_embed_list.', 'backbone.quality_predictor.',
               'keypoint_head.heatmap_mlp.')

    def expected_keys(self, keys: Collection[str]) -> List[str]:
        depth = max(
            (int(m.group(1)) for m in map(_BLOCK_INDEX.match, keys) if m),
            default=0) + 1
        head_layers = 2 if any(
            k.startswith('keypoint_head.heatmap_mlp.4.') for k in keys) else 1
        return expected_official_keys(depth, head_layers)

    def convert(self, state_dict: Dict[str, Tensor]
                ) -> Tuple[Dict[str, Tensor], List[str]]:
        return {
            rename(key, (('keypoint_head.', 'head.'), )): value
            for key, value in state_dict.items()
        }, []

"""Official SHaRPose checkpoints (``AnxQ/sharpose``, MMPose 0.x ``TopDown``).

The backbone (:class:`~sspose_mm.models.backbones.SHaRPoseViT`) keeps the
official module names; ``keypoint_head.heatmap_mlp.*`` becomes
``head.heatmap_mlp.*`` (:class:`~sspose_mm.models.heads.SHaRPoseHead`).
Nothing is dropped. The block count and the head's one- or two-layer MLP are
read from the keys; widths and grids must match the config (a strict load
says where not).
"""
from typing import Collection, List

from torch import nn

from ...models.backbones import SHaRPoseViT
from ..convert import CHECKPOINT_LAYOUTS, CheckpointLayout, count_layers


@CHECKPOINT_LAYOUTS.register_module('sharpose')
class SHaRPoseLayout(CheckpointLayout):
    description = ('SHaRPose (coarse-to-fine ViT with keypoint tokens and '
                   'quality predictor, backbone.* + keypoint_head.*)')
    markers = ('backbone.pos_embed_list.', 'backbone.quality_predictor.',
               'keypoint_head.heatmap_mlp.')
    renames = (('keypoint_head.', 'head.'), )

    def our_modules(self, keys: Collection[str]) -> nn.Module:
        depth = count_layers(keys, 'backbone.blocks.')
        return nn.ModuleDict(
            dict(backbone=SHaRPoseViT(embed_dims=8, num_heads=1, depth=depth)))

    def expected_keys(self, keys: Collection[str]) -> List[str]:
        # heatmap_mlp: LN, Linear (one layer) or LN, Linear, GELU, LN,
        # Linear, as SHaRPoseHead builds it for the heatmap size.
        layers = ('0', '1', '3', '4') if any(
            k.startswith('keypoint_head.heatmap_mlp.4.')
            for k in keys) else ('0', '1')
        return super().expected_keys(keys) + [
            f'keypoint_head.heatmap_mlp.{layer}.{param}' for layer in layers
            for param in ('weight', 'bias')
        ]

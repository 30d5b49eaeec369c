"""Official TransPose checkpoints (``yangsenius/TransPose``).

This package's TransPose models keep the official module names (MMPose's
``ResNet`` or :class:`~sspose_mm.models.backbones.HRNetS`, the
:class:`~sspose_mm.models.necks.TransPoseEncoder` neck, MMPose's
``HeatmapHead``), so a prefix map renames every key. ``pos_embedding``
``(h*w, 1, d)`` is dropped after checking it equals the sine table the neck
computes for the training input size.
"""
from typing import Collection

import torch
from mmengine.hub import get_config
from mmpose.models import HeatmapHead, ResNet
from torch import Tensor, nn

from ...errors import CheckpointError
from ...models.backbones import HRNetS
from ...models.necks import TransPoseEncoder
from ...models.utils import sine_position_embedding
from ..convert import (CHECKPOINT_LAYOUTS, CheckpointLayout, StateDict,
                       count_layers)

# HRNet-S is HRNet-W32 up to stage 3: its stages as MMPose's recipe states
# them (the HigherPose layout builds its HRNet from the same recipe).
HRNET_W32_RECIPE = ('mmpose::body_2d_keypoint/associative_embedding/coco/'
                    'ae_hrnet-w32_8xb24-300e_coco-512x512.py')


def hrnet_w32_extra() -> dict:
    """``extra`` (stages 1-4) of MMPose's HRNet-W32."""
    return get_config(HRNET_W32_RECIPE).model.backbone.extra


def sine_table_error(table: Tensor, h: int, w: int) -> float:
    """Largest difference of an official ``(h*w, 1, C)`` position table from
    the fixed 2D sine table of an ``h x w`` grid (inf for an odd ``C``)."""
    if table.shape[2] % 2:
        return float('inf')
    reference = sine_position_embedding(h, w, table.shape[2])
    return (table[:, 0].float() - reference).abs().max().item()


# The fixed tables are float32 evaluations of the same formula (equal to the
# last bit for the official and golden files); 1e-6 only allows another
# sin/cos library. A learned table is nowhere near it.
SINE_TOLERANCE = 1e-6


class TransPoseLayout(CheckpointLayout):
    renames = (('global_encoder.layers.', 'neck.layers.'),
               ('reduce.', 'neck.reduce.'), ('deconv_layers.',
                                             'head.deconv_layers.'),
               ('final_layer.', 'head.final_layer.'), ('', 'backbone.'))
    drops = ('pos_embedding', )
    stride: int  # input size / token grid size
    input_size = (256, 192)  # (H, W) the official pos_embedding is made for

    def our_modules(self, keys: Collection[str]) -> nn.Module:
        with torch.device('meta'):
            return nn.ModuleDict(
                zip(('backbone', 'neck', 'head'),
                    self.official_modules(
                        count_layers(keys, 'global_encoder.layers.'))))

    def official_modules(self, num_layers: int) -> tuple:
        """Backbone, neck and head of the official architecture (widths of
        the smallest official variant)."""
        raise NotImplementedError

    def check_drops(self, state_dict: StateDict) -> None:
        """The neck computes the sine table instead of storing it, so a
        stored table is only droppable when it is exactly that table."""
        table = state_dict['pos_embedding']
        h, w = (size // self.stride for size in self.input_size)
        if (table.ndim != 3 or tuple(table.shape[:2]) != (h * w, 1)
                or table.shape[2] % 2):
            raise CheckpointError(
                f'pos_embedding has shape {tuple(table.shape)}, not the '
                f'({h * w}, 1, d) sine table of a {self.input_size[0]}x'
                f'{self.input_size[1]} input ({h}x{w} tokens); other position '
                'embeddings are not supported.')
        error = sine_table_error(table, h, w)
        if not error <= SINE_TOLERANCE:
            raise CheckpointError(
                f'pos_embedding differs from the fixed 2D sine table by up to '
                f'{error:.3g} (tolerance {SINE_TOLERANCE:g}): a learnable or '
                'otherwise different position embedding is not supported, '
                'the model computes the sine table itself.')


@CHECKPOINT_LAYOUTS.register_module('transpose-r')
class TransPoseRLayout(TransPoseLayout):
    description = 'TransPose-R (ResNet-S, encoder, deconvolution head)'
    markers = ('layer2.', 'global_encoder.', 'deconv_layers.')
    stride = 8

    def official_modules(self, num_layers: int) -> tuple:
        # ResNet-S: the ResNet-50 stem and its first 3+4 Bottlenecks.
        resnet_s = ResNet(
            50,
            num_stages=2,
            strides=(1, 2),
            dilations=(1, 1),
            out_indices=(1, ))
        head = HeatmapHead(
            256, 17, deconv_out_channels=(256, ), deconv_kernel_sizes=(4, ))
        return resnet_s, TransPoseEncoder(512, 256, num_layers, 8, 1024), head


@CHECKPOINT_LAYOUTS.register_module('transpose-h')
class TransPoseHLayout(TransPoseLayout):
    description = 'TransPose-H (HRNet-S up to stage 3, encoder, 1x1 head)'
    # HigherPose's HRNet and encoder have the first three too.
    markers = ('transition1.', 'stage3.', 'global_encoder.', 'reduce.')
    stride = 4

    def official_modules(self, num_layers: int) -> tuple:
        extra = hrnet_w32_extra()
        del extra['stage4']
        return (HRNetS(extra), TransPoseEncoder(32, 64, num_layers, 1, 128),
                HeatmapHead(64, 17, deconv_out_channels=None))

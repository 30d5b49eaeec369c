"""Official TransPose checkpoints (``yangsenius/TransPose``).

This package's TransPose models keep the official module names: MMPose's
``ResNet`` or :class:`~sspose_mm.models.backbones.HRNetS` backbone, the
:class:`~sspose_mm.models.necks.TransPoseEncoder` neck (``reduce``,
``layers``) and MMPose's ``HeatmapHead`` (``deconv_layers``,
``final_layer``). So a prefix map renames every key, and the official key
set is read off those modules (built on the ``meta`` device: names, no
memory) instead of being listed. The number of encoder layers is read from
the keys. ``pos_embedding`` ``(h*w, 1, d)`` is dropped after checking it
equals the sine table the neck computes for the training input size.
"""
import re
from typing import Collection, List, Tuple

import torch
from mmpose.models import HeatmapHead, ResNet
from torch import Tensor, nn

from ...errors import CheckpointError
from ...models.backbones import HRNetS
from ...models.necks import TransPoseEncoder
from ...models.utils import sine_position_embedding
from ..convert import CHECKPOINT_LAYOUTS, CheckpointLayout, StateDict, rename

# Official key prefix -> ours; the first match wins, in both directions.
PREFIXES = (('global_encoder.layers.', 'neck.layers.'),
            ('reduce.', 'neck.reduce.'), ('deconv_layers.',
                                          'head.deconv_layers.'),
            ('final_layer.', 'head.final_layer.'), ('', 'backbone.'))
_ENCODER_INDEX = re.compile(r'global_encoder\.layers\.(\d+)\.')


class TransPoseLayout(CheckpointLayout):
    """Official TransPose checkpoints -> ``TopdownPoseEstimator`` with
    ``TransPoseEncoder``.

    Attributes:
        stride (int): Input size / token grid size.
        input_size (tuple[int, int]): ``(H, W)`` the official fixed
            ``pos_embedding`` was computed for.
    """

    stride: int
    input_size: Tuple[int, int] = (256, 192)

    def official_modules(self, num_layers: int) -> nn.ModuleDict:
        """Backbone, neck and head of the official architecture. Only the
        names matter: widths are those of the smallest official variant."""
        raise NotImplementedError

    def expected_keys(self, keys: Collection[str]) -> List[str]:
        # Layers 0..max must all be there; with none at all, listing layer
        # 0 as missing says what is wrong.
        indices = {
            int(m.group(1))
            for m in map(_ENCODER_INDEX.match, keys) if m
        }
        with torch.device('meta'):
            model = self.official_modules(max(indices, default=0) + 1)
        ours_to_official = [(ours, official) for official, ours in PREFIXES]
        return ['pos_embedding'] + [
            rename(key, ours_to_official) for key in model.state_dict()
        ]

    def convert(self, state_dict: StateDict) -> Tuple[StateDict, List[str]]:
        self._check_sine_table(state_dict['pos_embedding'])
        return {
            rename(key, PREFIXES): value
            for key, value in state_dict.items() if key != 'pos_embedding'
        }, ['pos_embedding']

    def _check_sine_table(self, table: Tensor) -> None:
        """The neck computes the sine table instead of storing it, so a
        stored table is only droppable when it is exactly that table."""
        h, w = (size // self.stride for size in self.input_size)
        if (table.ndim != 3 or tuple(table.shape[:2]) != (h * w, 1)
                or table.shape[2] % 2):
            raise CheckpointError(
                f'pos_embedding has shape {tuple(table.shape)}, not the '
                f'({h * w}, 1, d) sine table of a {self.input_size[0]}x'
                f'{self.input_size[1]} input ({h}x{w} tokens); other position '
                'embeddings are not supported.')
        reference = sine_position_embedding(h, w, table.shape[2])
        # Both are float32 evaluations of one formula (equal to the last bit
        # for the official files); 1e-6 only allows another sin/cos library.
        error = (table[:, 0].float() - reference).abs().max().item()
        if not error <= 1e-6:
            raise CheckpointError(
                f'pos_embedding differs from the fixed 2D sine table by up to '
                f'{error:.3g} (tolerance 1e-6): a learnable or otherwise '
                'different position embedding is not supported, the model '
                'computes the sine table itself.')


@CHECKPOINT_LAYOUTS.register_module('transpose-r')
class TransPoseRLayout(TransPoseLayout):
    description = 'TransPose-R (ResNet-S, encoder, deconvolution head)'
    markers = ('layer2.', 'global_encoder.', 'deconv_layers.')
    stride = 8

    def official_modules(self, num_layers: int) -> nn.ModuleDict:
        # ResNet-S: the ResNet-50 stem and its first 3+4 Bottlenecks.
        return nn.ModuleDict(
            dict(
                backbone=ResNet(
                    50,
                    num_stages=2,
                    strides=(1, 2),
                    dilations=(1, 1),
                    out_indices=(1, )),
                neck=TransPoseEncoder(512, 256, num_layers, 8, 1024),
                head=HeatmapHead(
                    256,
                    17,
                    deconv_out_channels=(256, ),
                    deconv_kernel_sizes=(4, ))))


@CHECKPOINT_LAYOUTS.register_module('transpose-h')
class TransPoseHLayout(TransPoseLayout):
    description = 'TransPose-H (HRNet-S up to stage 3, encoder, 1x1 head)'
    # HigherPose's HRNet and encoder have the first three too.
    markers = ('transition1.', 'stage3.', 'global_encoder.', 'reduce.')
    stride = 4

    def official_modules(self, num_layers: int) -> nn.ModuleDict:
        stages = dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block='BOTTLENECK',
                num_blocks=(4, ),
                num_channels=(64, )),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block='BASIC',
                num_blocks=(4, 4),
                num_channels=(32, 64)),
            stage3=dict(
                num_modules=4,
                num_branches=3,
                block='BASIC',
                num_blocks=(4, 4, 4),
                num_channels=(32, 64, 128)))
        return nn.ModuleDict(
            dict(
                backbone=HRNetS(stages),
                neck=TransPoseEncoder(32, 64, num_layers, 1, 128),
                head=HeatmapHead(64, 17, deconv_out_channels=None)))

"""Official HigherPose checkpoints (``jcong0226/higherpose``).

``dist_train.py`` saves ``model.state_dict()`` of ``PoseHigherResolutionNet``
(no ``module.`` prefix). It becomes a ``BottomupPoseEstimator`` with
:class:`~sspose_mm.models.backbones.HigherPoseHRNet` (the official
computation is its ``attention_mode='released'``) and
:class:`~sspose_mm.models.heads.HigherHRNetHead`. Each transformer layer's
``self_attn.linears.0-2`` (q, k, v) are stacked in that order into
``in_proj_weight``/``in_proj_bias``; :data:`_RENAMES` renames the rest.

Position tables, ``((S/8)^2, 1, 4)`` and ``((S/4)^2, 1, 32)`` for a square
``S x S`` training input: the fixed sine tables (COCO config) are dropped
after checking they equal what the backbone computes; any other table is a
learned one (CrowdPose config) and becomes ``pos_embedding`` ``(1, C, h, w)``
of its transformer. ``pos_embedding`` is a second name the official module
has for the decoder table (``pos_embedding_de``): it is dropped after
checking it holds the same values.
"""
import math
import re
from typing import Collection, List, Tuple

import torch
from torch import Tensor, nn

from ...errors import CheckpointError
from ...models.backbones import HigherPoseHRNet
from ...models.heads import HigherHRNetHead
from ...utils import rename
from ..convert import (CHECKPOINT_LAYOUTS, CheckpointLayout, StateDict,
                       count_layers)
from .transpose import SINE_TOLERANCE, hrnet_w32_extra, sine_table_error

# Official prefix -> ours, the first match wins in both directions ('' last:
# the HRNet keeps its names).
_LAYER_PARTS = (('self_attn.linears.3.', 'self_attn.out_proj.'), ('linear1.',
                                                                  'ffn.0.'),
                ('linear2.', 'ffn.3.'), ('dw.', 'depthwise.'), ('', ''))
_RENAMES = (
    *((f'global_{official}coder.layers.*.{old}',
       f'backbone.{ours}_transformer.layers.*.{new}')
      for official, ours in (('en', 'global'), ('de', 'local'))
      for old, new in _LAYER_PARTS),
    ('extration.', 'backbone.global_reduction.'),
    ('up.', 'backbone.global_upsample.'),
    ('fusion.', 'backbone.fusion.'),
    ('final_layers.0.', 'head.final_layer.'),
    ('final_layers.1.', 'head.highres_final_layer.'),
    ('deconv_layers.0.0.0.', 'head.upsample_layers.0.'),
    ('deconv_layers.0.0.1.', 'head.upsample_layers.1.'),
    # upsample_layers.2 is the ReLU; the basic blocks follow it.
    *((f'deconv_layers.0.{i}.0.', f'head.upsample_layers.{i + 2}.')
      for i in range(1, 5)),
    ('', 'backbone.'))
# q, k and v of the official attention, stacked in this order.
_QKV = tuple(f'self_attn.linears.{i}.' for i in range(3))
_PACKED = 'self_attn.in_proj_'
# Official table name -> the transformer that holds it.
_TABLES = dict(
    pos_embedding_en='global_transformer',
    pos_embedding_de='local_transformer')
_ALIAS = 'pos_embedding'  # the same tensor as pos_embedding_de
_QKV_KEY = re.compile(r'(?P<layer>.*\.)self_attn\.linears\.(?P<index>[012])\.'
                      r'(?P<param>weight|bias)$')


def _grid(name: str, table: Tensor) -> int:
    """Side of the square token grid of an official ``(h*w, 1, C)`` table."""
    if table.ndim == 3 and table.shape[1] == 1:
        side = math.isqrt(table.shape[0])
        if side * side == table.shape[0]:
            return side
    raise CheckpointError(
        f'{name} has shape {tuple(table.shape)}, not the (h*w, 1, C) table '
        'of a square training input.')


@CHECKPOINT_LAYOUTS.register_module('higherpose')
class HigherPoseLayout(CheckpointLayout):
    description = ('HigherPose (HigherHRNet-W32 with global_encoder/'
                   'global_decoder transformers; attention_mode=released)')
    markers = ('extration.', 'global_encoder.layers.',
               'global_decoder.layers.', 'final_layers.')
    renames = _RENAMES

    def our_modules(self, keys: Collection[str]) -> nn.Module:
        # The HRNet-W32 of the HigherPose configs.
        extra = hrnet_w32_extra()
        extra.stage4.multiscale_output = False
        num_layers = count_layers(keys, 'global_encoder.layers.')
        with torch.device('meta'):
            return nn.ModuleDict(
                dict(
                    backbone=HigherPoseHRNet(extra, num_layers=num_layers),
                    head=HigherHRNetHead(32, 17)))

    def to_official(self, key: str) -> List[str]:
        """One name, or three for a packed q/k/v."""
        layer, packed, param = super().to_official(key)[0].partition(_PACKED)
        if not packed:
            return [layer]
        return [f'{layer}{qkv}{param}' for qkv in _QKV]

    def expected_keys(self, keys: Collection[str]) -> List[str]:
        return [_ALIAS, *_TABLES] + super().expected_keys(keys)

    def convert(self, state_dict: StateDict) -> Tuple[StateDict, List[str]]:
        if not torch.equal(state_dict[_ALIAS], state_dict['pos_embedding_de']):
            raise CheckpointError(
                f'{_ALIAS} differs from pos_embedding_de: in an official '
                'checkpoint they are one tensor saved under two names.')
        converted, dropped = {}, [_ALIAS]
        for name, transformer in _TABLES.items():
            table = state_dict[name]
            side = _grid(name, table)
            if sine_table_error(table, side, side) <= SINE_TOLERANCE:
                dropped.append(name)
            else:
                converted[f'backbone.{transformer}.pos_embedding'] = (
                    table[:, 0].t().reshape(1, -1, side, side))
        for key, value in state_dict.items():
            if key in _TABLES or key == _ALIAS:
                continue
            qkv = _QKV_KEY.match(key)
            if not qkv:
                converted[rename(key, _RENAMES)] = value
            elif qkv['index'] == '0':  # k and v are stacked with it
                layer, param = qkv['layer'], qkv['param']
                ours = rename(f'{layer}{_PACKED}{param}', _RENAMES)
                converted[ours] = torch.cat(
                    [state_dict[f'{layer}{part}{param}'] for part in _QKV])
        return converted, dropped

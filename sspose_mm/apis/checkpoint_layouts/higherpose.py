"""Official HigherPose checkpoints (``jcong0226/higherpose``).

``dist_train.py`` saves ``model.state_dict()`` of ``PoseHigherResolutionNet``
(no ``module.`` prefix). It becomes a ``BottomupPoseEstimator`` with
:class:`~sspose_mm.models.backbones.HigherPoseHRNet` and
:class:`~sspose_mm.models.heads.HigherHRNetHead`; the official computation
is that backbone's ``attention_mode='released'``.

Renames (official -> ours): the HRNet keys (``conv1``, ``bn1``, ``layer1``,
``transition*``, ``stage*``) keep their names under ``backbone.``;
``extration``/``up``/``fusion`` -> ``backbone.global_reduction``/
``global_upsample``/``fusion``; ``global_encoder``/``global_decoder`` ->
``backbone.global_transformer``/``local_transformer``, where each layer's
``self_attn.linears.0-2`` (q, k, v) are stacked into ``in_proj_weight``/
``in_proj_bias`` (that row order), ``linears.3`` -> ``out_proj``,
``linear1``/``linear2`` -> ``ffn.0``/``ffn.3``, ``dw`` -> ``depthwise``;
``final_layers.0``/``1`` -> ``head.final_layer``/``highres_final_layer``;
``deconv_layers.0`` (transposed conv + BN, then 4 basic blocks) ->
``head.upsample_layers``. The official key set is read off our modules
(built on the ``meta`` device) through the same table, with the layer count
taken from the keys.

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
from mmengine.hub import get_config
from torch import Tensor

from ...errors import CheckpointError
from ...models.backbones import HigherPoseHRNet
from ...models.heads import HigherHRNetHead
from ...models.utils import sine_position_embedding
from ..convert import CHECKPOINT_LAYOUTS, CheckpointLayout, StateDict, rename

HRNET_W32_RECIPE = ('mmpose::body_2d_keypoint/associative_embedding/coco/'
                    'ae_hrnet-w32_8xb24-300e_coco-512x512.py')
# Official transformer prefix -> ours; within a layer, _LAYER_PARTS.
_TRANSFORMERS = (('global_encoder.layers.',
                  'backbone.global_transformer.layers.'),
                 ('global_decoder.layers.',
                  'backbone.local_transformer.layers.'))
_LAYER_PARTS = (
    ('self_attn.linears.3.', 'self_attn.out_proj.'),
    ('linear1.', 'ffn.0.'),
    ('linear2.', 'ffn.3.'),
    ('dw.', 'depthwise.'),
)
# Official prefix -> ours for everything else; the first match wins, in both
# directions ('' last: the HRNet keeps its names).
_PREFIXES = (
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
_TABLES = {
    'pos_embedding_en': 'global_transformer',
    'pos_embedding_de': 'local_transformer'
}
_ALIAS = 'pos_embedding'  # the same tensor as pos_embedding_de
_QKV_KEY = re.compile(r'(?P<layer>.*\.)self_attn\.linears\.(?P<index>[012])\.'
                      r'(?P<param>weight|bias)$')
_LAYER_INDEX = re.compile(r'global_(?:en|de)coder\.layers\.(\d+)\.')


def _rename(key: str, prefixes: Tuple[Tuple[str, str], ...],
            transformers: Tuple[Tuple[str, str], ...],
            parts: Tuple[Tuple[str, str], ...]) -> str:
    """``key`` renamed by the tables given as ``(from, to)`` pairs."""
    for old, new in transformers:
        if key.startswith(old):
            index, _, rest = key[len(old):].partition('.')
            return f'{new}{index}.{rename(rest, parts)}'
    return rename(key, prefixes)


def _swap(pairs: Tuple[Tuple[str, str], ...]) -> Tuple[Tuple[str, str], ...]:
    return tuple((new, old) for old, new in pairs)


def to_ours(key: str) -> str:
    """Our name of an official key (the q/k/v linears excepted)."""
    return _rename(key, _PREFIXES, _TRANSFORMERS, _LAYER_PARTS)


def to_official(key: str) -> List[str]:
    """The official names of one of our keys (three for a packed q/k/v)."""
    official = _rename(key, _swap(_PREFIXES), _swap(_TRANSFORMERS),
                       _swap(_LAYER_PARTS))
    layer, packed, param = official.partition(_PACKED)
    if not packed:
        return [official]
    return [f'{layer}{qkv}{param}' for qkv in _QKV]


def _grid(name: str, table: Tensor) -> int:
    """Side of the square token grid of an official ``(h*w, 1, C)``
    table."""
    if table.ndim == 3 and table.shape[1] == 1:
        side = math.isqrt(table.shape[0])
        if side * side == table.shape[0]:
            return side
    raise CheckpointError(
        f'{name} has shape {tuple(table.shape)}, not the (h*w, 1, C) table '
        'of a square training input.')


def _is_sine_table(table: Tensor, side: int) -> bool:
    if table.shape[2] % 2:
        return False
    reference = sine_position_embedding(side, side, table.shape[2])
    # The fixed tables are float32 evaluations of the same formula (equal to
    # the last bit for the golden files); 1e-6 only allows another sin/cos
    # library. A learned table is nowhere near it.
    return bool((table[:, 0].float() - reference).abs().max() <= 1e-6)


@CHECKPOINT_LAYOUTS.register_module('higherpose')
class HigherPoseLayout(CheckpointLayout):
    """Official HigherPose checkpoints -> ``BottomupPoseEstimator`` with
    ``HigherPoseHRNet`` and ``HigherHRNetHead``."""

    description = ('HigherPose (HigherHRNet-W32 with global_encoder/'
                   'global_decoder transformers; attention_mode=released)')
    markers = ('extration.', 'global_encoder.layers.',
               'global_decoder.layers.', 'final_layers.')

    def expected_keys(self, keys: Collection[str]) -> List[str]:
        # Layers 0..max must all be there; with none at all, listing layer
        # 0 as missing says what is wrong.
        num_layers = max(
            (int(m.group(1)) for m in map(_LAYER_INDEX.match, keys) if m),
            default=0) + 1
        # The HRNet-W32 of the HigherPose configs (from this MMPose recipe);
        # the keypoint count does not change names.
        extra = get_config(HRNET_W32_RECIPE).model.backbone.extra
        extra.stage4.multiscale_output = False
        with torch.device('meta'):
            model = torch.nn.ModuleDict(
                dict(
                    backbone=HigherPoseHRNet(extra, num_layers=num_layers),
                    head=HigherHRNetHead(32, 17)))
        return [_ALIAS, *_TABLES] + [
            official for key in model.state_dict()
            for official in to_official(key)
        ]

    def convert(self, state_dict: StateDict) -> Tuple[StateDict, List[str]]:
        alias, decoder_table = (state_dict[_ALIAS],
                                state_dict['pos_embedding_de'])
        if not torch.equal(alias, decoder_table):
            raise CheckpointError(
                f'{_ALIAS} differs from pos_embedding_de: in an official '
                'checkpoint they are one tensor saved under two names.')
        converted, dropped = {}, [_ALIAS]
        for name, transformer in _TABLES.items():
            table = state_dict[name]
            side = _grid(name, table)
            if _is_sine_table(table, side):
                dropped.append(name)
            else:
                converted[f'backbone.{transformer}.pos_embedding'] = (
                    table[:, 0].t().reshape(1, -1, side, side))
        for key, value in state_dict.items():
            if key in _TABLES or key == _ALIAS:
                continue
            qkv = _QKV_KEY.match(key)
            if not qkv:
                converted[to_ours(key)] = value
            elif qkv['index'] == '0':  # k and v are stacked with it
                layer, param = qkv['layer'], qkv['param']
                converted[to_ours(f'{layer}{_PACKED}{param}')] = torch.cat(
                    [state_dict[f'{layer}{part}{param}'] for part in _QKV])
        return converted, dropped

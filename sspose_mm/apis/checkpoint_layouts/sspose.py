"""Official SSpose (ConvMAE-style) pretraining checkpoints.

``yulinfangylf/SSpose``'s ``MaskedAutoencoderConvViT`` (the released
"SSpose-B" pretraining file, ``{'model': state_dict, ...}``) becomes an
:class:`~sspose_mm.models.pretrainers.SSposeMAE` state dict. Its
``backbone.*`` part initialises a pose model with the same backbone widths
(``load_from`` or ``init_cfg=dict(type='Pretrained', prefix='backbone.')``);
the backbone resizes ``pos_embed`` to its token grid while loading.

Renames (official -> ours): ``patch_embed1-3`` -> ``patch_embed.embed1-3``,
``patch_embed4`` -> ``patch_embed.linear``, conv blocks' ``conv1``/``attn``/
``conv2`` -> ``value``/``masked_conv``/``proj`` under ``patch_embed``,
``blocks3`` -> ``layers``, timm attention ``qkv``/``proj`` ->
``in_proj_weight``/``in_proj_bias``/``out_proj`` (same row order),
``stage{1,2}_output_decode`` -> ``fusion.stage{1,2}``, ``decoder_*`` ->
``decoder.*``. Nothing is dropped: the fixed sin-cos tables are stored in
our model as in the official one.
"""
import re
from typing import Collection, Dict, List, Optional, Tuple

from torch import Tensor

from ..convert import CHECKPOINT_LAYOUTS, CheckpointLayout

_CONV_BLOCK = {
    'norm1': 'norm1',
    'conv1': 'value',
    'attn': 'masked_conv',
    'conv2': 'proj',
    'norm2': 'norm2',
    'mlp.fc1': 'mlp.fc1',
    'mlp.fc2': 'mlp.fc2'
}
_TRANSFORMER_LAYER = {
    'norm1.weight': 'norm1.weight',
    'norm1.bias': 'norm1.bias',
    'attn.qkv.weight': 'attn.in_proj_weight',
    'attn.qkv.bias': 'attn.in_proj_bias',
    'attn.proj.weight': 'attn.out_proj.weight',
    'attn.proj.bias': 'attn.out_proj.bias',
    'norm2.weight': 'norm2.weight',
    'norm2.bias': 'norm2.bias',
    'mlp.fc1.weight': 'mlp.fc1.weight',
    'mlp.fc1.bias': 'mlp.fc1.bias',
    'mlp.fc2.weight': 'mlp.fc2.weight',
    'mlp.fc2.bias': 'mlp.fc2.bias'
}
_MODULES = {
    'patch_embed1': 'backbone.patch_embed.embed1',
    'patch_embed2': 'backbone.patch_embed.embed2',
    'patch_embed3': 'backbone.patch_embed.embed3',
    'patch_embed4': 'backbone.patch_embed.linear',
    'stage1_output_decode': 'backbone.fusion.stage1',
    'stage2_output_decode': 'backbone.fusion.stage2',
    'norm': 'backbone.norm',
    'decoder_embed': 'decoder.embed',
    'decoder_norm': 'decoder.norm',
    'decoder_pred': 'decoder.pred'
}
_CONV_EMBEDS = ('patch_embed1', 'patch_embed2', 'patch_embed3')


def _params_of(module: str) -> tuple:
    if module in _CONV_EMBEDS:
        return ('proj.weight', 'proj.bias', 'norm.weight', 'norm.bias')
    return ('weight', 'bias')


# Official key -> ours, for every key outside the block stacks.
_SINGLE_KEYS = {
    'pos_embed': 'backbone.pos_embed',
    'mask_token': 'decoder.mask_token',
    'decoder_pos_embed': 'decoder.pos_embed',
    **{
        f'{module}.{param}': f'{ours}.{param}'
        for module, ours in _MODULES.items()
        for param in _params_of(module)
    }
}
_BLOCK = re.compile(r'(blocks1|blocks2|blocks3|decoder_blocks)\.(\d+)\.(.+)')
_CONV_BLOCK_KEYS = {
    f'{module}.{param}': f'{ours}.{param}'
    for module, ours in _CONV_BLOCK.items()
    for param in ('weight', 'bias')
}


def _our_name(key: str) -> Optional[str]:
    """Our name of an official key, or None for a key this layout lacks."""
    if key in _SINGLE_KEYS:
        return _SINGLE_KEYS[key]
    block = _BLOCK.fullmatch(key)
    if block is None:
        return None
    stack, index, rest = block.groups()
    if stack in ('blocks1', 'blocks2'):
        ours = _CONV_BLOCK_KEYS.get(rest)
        owner = f'backbone.patch_embed.{stack}'
    else:
        ours = _TRANSFORMER_LAYER.get(rest)
        owner = 'backbone.layers' if stack == 'blocks3' else 'decoder.layers'
    return None if ours is None else f'{owner}.{index}.{ours}'


def expected_official_keys(depths: Dict[str, int]) -> List[str]:
    """Every official key for the given number of blocks per stack."""
    keys = list(_SINGLE_KEYS)
    for stack, names in (('blocks1', _CONV_BLOCK_KEYS),
                         ('blocks2', _CONV_BLOCK_KEYS), ('blocks3',
                                                         _TRANSFORMER_LAYER),
                         ('decoder_blocks', _TRANSFORMER_LAYER)):
        keys += [
            f'{stack}.{i}.{name}' for i in range(depths[stack])
            for name in names
        ]
    return keys


@CHECKPOINT_LAYOUTS.register_module('sspose-pretrain')
class SSposePretrainLayout(CheckpointLayout):
    """The official pretraining model's keys -> :class:`SSposeMAE` keys.

    Block counts are read from the keys (any depths), widths from the
    tensors; the model config must match them (a strict load says where
    not).
    """

    description = ('SSpose / ConvMAE MaskedAutoencoderConvViT pretraining '
                   '(encoder + decoder)')
    markers = ('stage1_output_decode.', 'blocks3.', 'decoder_blocks.',
               'patch_embed4.')

    def expected_keys(self, keys: Collection[str]) -> List[str]:
        depths = {
            stack: 0
            for stack in ('blocks1', 'blocks2', 'blocks3', 'decoder_blocks')
        }
        for match in filter(None, map(_BLOCK.fullmatch, keys)):
            stack, index = match.group(1), int(match.group(2))
            depths[stack] = max(depths[stack], index + 1)
        return expected_official_keys(depths)

    def convert(self, state_dict: Dict[str, Tensor]
                ) -> Tuple[Dict[str, Tensor], List[str]]:
        return {_our_name(k): v for k, v in state_dict.items()}, []

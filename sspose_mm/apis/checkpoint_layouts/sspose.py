"""Official SSpose (ConvMAE-style) checkpoints: the pretraining model and
the ImageNet fine-tuning network.

``sspose-pretrain``: ``yulinfangylf/SSpose``'s ``MaskedAutoencoderConvViT``
(the released "SSpose-B" pretraining file, ``{'model': state_dict, ...}``)
becomes an :class:`~sspose_mm.models.pretrainers.SSposeMAE` state dict. Its
``backbone.*`` part initialises a pose model with the same backbone widths
(``load_from`` or ``init_cfg=dict(type='Pretrained', prefix='backbone.')``);
the backbone resizes ``pos_embed`` to its token grid while loading. Nothing
is dropped: the fixed sin-cos tables are stored in our model as in the
official one.

``sspose-finetune``: the released "SSpose-B" ImageNet fine-tuning file
(``models_convvit.ConvViT``: the same trunk without the fusion convolutions,
``fc_norm`` after the token average instead of ``norm``, a 1000-class
``head``) becomes ``backbone.*`` keys of a pose backbone without fusion
(``fusion='none'``): ``fc_norm`` initialises its final norm, the classifier
is dropped.

Renames (official -> ours): ``patch_embed1-3`` -> ``patch_embed.embed1-3``,
``patch_embed4`` -> ``patch_embed.linear``, conv blocks' ``conv1``/``attn``/
``conv2`` -> ``value``/``masked_conv``/``proj`` under ``patch_embed``,
``blocks3`` -> ``layers``, timm attention ``qkv``/``proj`` ->
``in_proj_weight``/``in_proj_bias``/``out_proj`` (same row order),
``stage{1,2}_output_decode`` -> ``fusion.stage{1,2}``, ``decoder_*`` ->
``decoder.*``, ``fc_norm`` -> ``norm``.
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
# Official module -> ours: the encoder trunk both released networks share,
# then what each adds.
_TRUNK = {
    'patch_embed1': 'backbone.patch_embed.embed1',
    'patch_embed2': 'backbone.patch_embed.embed2',
    'patch_embed3': 'backbone.patch_embed.embed3',
    'patch_embed4': 'backbone.patch_embed.linear',
}
_PRETRAIN_MODULES = {
    **_TRUNK, 'stage1_output_decode': 'backbone.fusion.stage1',
    'stage2_output_decode': 'backbone.fusion.stage2',
    'norm': 'backbone.norm',
    'decoder_embed': 'decoder.embed',
    'decoder_norm': 'decoder.norm',
    'decoder_pred': 'decoder.pred'
}
# The ImageNet fine-tuning network normalises the average of the tokens with
# ``fc_norm`` (its only LayerNorm after the transformer, 768 wide, eps 1e-6)
# and has no ``norm``: ``fc_norm`` initialises the pose backbone's final
# norm, which normalises each token.
_FINETUNE_MODULES = {**_TRUNK, 'fc_norm': 'backbone.norm'}
_CONV_EMBEDS = ('patch_embed1', 'patch_embed2', 'patch_embed3')


def _params_of(module: str) -> tuple:
    if module in _CONV_EMBEDS:
        return ('proj.weight', 'proj.bias', 'norm.weight', 'norm.bias')
    return ('weight', 'bias')


def _single_keys(modules: Dict[str, str],
                 tensors: Dict[str, str]) -> Dict[str, str]:
    """Official key -> ours for every key outside the block stacks."""
    return {
        **tensors,
        **{
            f'{module}.{param}': f'{ours}.{param}'
            for module, ours in modules.items()
            for param in _params_of(module)
        }
    }


_PRETRAIN_KEYS = _single_keys(
    _PRETRAIN_MODULES, {
        'pos_embed': 'backbone.pos_embed',
        'mask_token': 'decoder.mask_token',
        'decoder_pos_embed': 'decoder.pos_embed'
    })
_FINETUNE_KEYS = _single_keys(_FINETUNE_MODULES,
                              {'pos_embed': 'backbone.pos_embed'})
# The fine-tuning network's 1000-class ImageNet classifier: nothing of a
# pose model corresponds to it.
_CLASSIFIER = ('head.weight', 'head.bias')
_BLOCK = re.compile(r'(blocks1|blocks2|blocks3|decoder_blocks)\.(\d+)\.(.+)')
_CONV_BLOCK_KEYS = {
    f'{module}.{param}': f'{ours}.{param}'
    for module, ours in _CONV_BLOCK.items()
    for param in ('weight', 'bias')
}
_STACK_KEYS = {
    'blocks1': _CONV_BLOCK_KEYS,
    'blocks2': _CONV_BLOCK_KEYS,
    'blocks3': _TRANSFORMER_LAYER,
    'decoder_blocks': _TRANSFORMER_LAYER
}
_STACK_OWNERS = {
    'blocks1': 'backbone.patch_embed.blocks1',
    'blocks2': 'backbone.patch_embed.blocks2',
    'blocks3': 'backbone.layers',
    'decoder_blocks': 'decoder.layers'
}


class _SSposeLayout(CheckpointLayout):
    """An official network on the ConvViT trunk: its keys outside the
    block stacks (``singles``, official -> ours), its block stacks, and the
    keys it drops. Block counts are read from the keys (any depths), widths
    from the tensors; the model config must match them (a strict load says
    where not)."""

    singles: Dict[str, str] = {}
    stacks: Tuple[str, ...] = ()
    drops: Tuple[str, ...] = ()

    def _our_name(self, key: str) -> Optional[str]:
        """Our name of an official key, or None for a key this layout
        lacks."""
        if key in self.singles:
            return self.singles[key]
        block = _BLOCK.fullmatch(key)
        if block is None or block.group(1) not in self.stacks:
            return None
        stack, index, rest = block.groups()
        ours = _STACK_KEYS[stack].get(rest)
        owner = _STACK_OWNERS[stack]
        return None if ours is None else f'{owner}.{index}.{ours}'

    def expected_keys(self, keys: Collection[str]) -> List[str]:
        depths = dict.fromkeys(self.stacks, 0)
        for match in filter(None, map(_BLOCK.fullmatch, keys)):
            stack, index = match.group(1), int(match.group(2))
            if stack in depths:
                depths[stack] = max(depths[stack], index + 1)
        return [*self.singles, *self.drops] + [
            f'{stack}.{i}.{name}' for stack in self.stacks
            for i in range(depths[stack]) for name in _STACK_KEYS[stack]
        ]

    def convert(self, state_dict: Dict[str, Tensor]
                ) -> Tuple[Dict[str, Tensor], List[str]]:
        converted = {
            self._our_name(k): v
            for k, v in state_dict.items() if k not in self.drops
        }
        return converted, [k for k in state_dict if k in self.drops]


@CHECKPOINT_LAYOUTS.register_module('sspose-pretrain')
class SSposePretrainLayout(_SSposeLayout):
    """The official pretraining model's keys -> :class:`SSposeMAE` keys."""

    description = ('SSpose / ConvMAE MaskedAutoencoderConvViT pretraining '
                   '(encoder + decoder)')
    markers = ('stage1_output_decode.', 'blocks3.', 'decoder_blocks.',
               'patch_embed4.')
    singles = _PRETRAIN_KEYS
    stacks = ('blocks1', 'blocks2', 'blocks3', 'decoder_blocks')


@CHECKPOINT_LAYOUTS.register_module('sspose-finetune')
class SSposeFinetuneLayout(_SSposeLayout):
    """The official ImageNet fine-tuning network's keys (``ConvViT``: the
    trunk, ``fc_norm``, the classifier ``head``; no fusion, no decoder) ->
    a pose backbone's ``backbone.*`` keys (``fusion='none'``); the
    classifier is dropped."""

    description = ('SSpose / ConvMAE ConvViT ImageNet fine-tuning (encoder '
                   'only: a backbone initialisation; classifier dropped)')
    markers = ('fc_norm.', 'blocks3.', 'patch_embed4.')
    dropped_reason = 'the ImageNet classifier, which a pose model has not'
    singles = _FINETUNE_KEYS
    stacks = ('blocks1', 'blocks2', 'blocks3')
    drops = _CLASSIFIER

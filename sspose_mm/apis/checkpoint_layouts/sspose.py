"""Official SSpose (ConvMAE-style) checkpoints: the pretraining model and
the ImageNet fine-tuning network.

``sspose-pretrain``: the released "SSpose-B" pretraining file
(``MaskedAutoencoderConvViT``, ``{'model': state_dict, ...}``) becomes an
:class:`~sspose_mm.models.pretrainers.SSposeMAE` state dict, whose
``backbone.*`` part initialises a pose model with the same backbone widths
(``load_from`` or ``init_cfg=dict(type='Pretrained', prefix='backbone.')``;
``pos_embed`` is resized to the token grid while loading). Nothing is
dropped: the fixed sin-cos tables are stored as in the official model.

``sspose-finetune``: the released ImageNet fine-tuning file
(``models_convvit.ConvViT``: the same trunk without the fusion convolutions,
``fc_norm`` after the token average instead of ``norm``, a 1000-class
``head``) becomes ``backbone.*`` keys of a pose backbone with
``fusion='none'``; the classifier is dropped.

Block counts are read from the keys (any depths); widths come with the
tensors, and the model config must match them (a strict load says where
not).
"""
from typing import Collection

from torch import nn

from ...models.backbones import SSposeConvViT
from ...models.pretrainers import SSposeMAE
from ..convert import CHECKPOINT_LAYOUTS, CheckpointLayout, count_layers

# Official prefix -> ours, the first match wins in both directions (see
# convert.rename): the encoder trunk both released networks share.
_TRUNK = (
    *((f'patch_embed{i}.', f'backbone.patch_embed.embed{i}.')
      for i in (1, 2, 3)),
    ('patch_embed4.', 'backbone.patch_embed.linear.'),
    *((f'blocks{i}.*.{old}', f'backbone.patch_embed.blocks{i}.*.{new}')
      for i in (1, 2)
      for old, new in (('conv1.', 'value.'), ('attn.', 'masked_conv.'),
                       ('conv2.', 'proj.'), ('', ''))),
    # timm's qkv/proj -> in_proj_weight/in_proj_bias/out_proj (same rows).
    *((f'{stack}.*.{old}', f'{ours}.*.{new}')
      for stack, ours in (('blocks3', 'backbone.layers'),
                          ('decoder_blocks', 'decoder.layers'))
      for old, new in (('attn.qkv.', 'attn.in_proj_'),
                       ('attn.proj.', 'attn.out_proj.'), ('', ''))),
    ('pos_embed', 'backbone.pos_embed'))
_NAMES_ONLY = dict(embed_dims=(8, 8, 8), num_heads=1)


def _depths(keys: Collection[str]) -> tuple:
    """Blocks of the three encoder stages in the official keys."""
    return tuple(count_layers(keys, f'blocks{i}.') for i in (1, 2, 3))


@CHECKPOINT_LAYOUTS.register_module('sspose-pretrain')
class SSposePretrainLayout(CheckpointLayout):
    description = ('SSpose / ConvMAE MaskedAutoencoderConvViT pretraining '
                   '(encoder + decoder)')
    markers = ('stage1_output_decode.', 'blocks3.', 'decoder_blocks.',
               'patch_embed4.')
    renames = (*_TRUNK,
               *((f'stage{i}_output_decode.', f'backbone.fusion.stage{i}.')
                 for i in (1, 2)), ('norm.', 'backbone.norm.'),
               ('mask_token', 'decoder.mask_token'),
               *((f'decoder_{name}', f'decoder.{name}')
                 for name in ('embed.', 'norm.', 'pred.', 'pos_embed')))

    def our_modules(self, keys: Collection[str]) -> nn.Module:
        return SSposeMAE(
            dict(type='SSposeConvViT', depths=_depths(keys), **_NAMES_ONLY),
            decoder=dict(
                embed_dims=8,
                num_heads=1,
                depth=count_layers(keys, 'decoder_blocks.')))


@CHECKPOINT_LAYOUTS.register_module('sspose-finetune')
class SSposeFinetuneLayout(CheckpointLayout):
    description = ('SSpose / ConvMAE ConvViT ImageNet fine-tuning (encoder '
                   'only: a backbone initialisation; classifier dropped)')
    markers = ('fc_norm.', 'blocks3.', 'patch_embed4.')
    dropped_reason = 'the ImageNet classifier, which a pose model has not'
    # ``fc_norm`` (its only LayerNorm after the transformer, 768 wide, eps
    # 1e-6, on the token average) initialises the pose backbone's final
    # norm, which normalises each token.
    renames = (*_TRUNK, ('fc_norm.', 'backbone.norm.'))
    drops = ('head.weight', 'head.bias')

    def our_modules(self, keys: Collection[str]) -> nn.Module:
        return nn.ModuleDict(
            dict(
                backbone=SSposeConvViT(
                    depths=_depths(keys), fusion='none', **_NAMES_ONLY)))

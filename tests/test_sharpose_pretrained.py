"""SHaRPoseViT's pretrained ViT loading: MAE weights in facebookresearch's
(timm's) naming and in mmpretrain's (what MMPose's ViTPose configs
download) load tensor for tensor; a file that leaves the transformer blocks
random stops with one ``error:`` line; the log counts loaded, missing and
unexpected tensors.

The mmpretrain names are written out here from mmpretrain's
``VisionTransformer`` (``layers.i.ln1/ln2``, ``attn.qkv/proj``, mmcv's
``FFN`` as ``ffn.layers.0.0`` and ``ffn.layers.1``, mmcv's ``PatchEmbed``
as ``patch_embed.projection``, the final norm ``ln1``); the two mmcv module
names are also checked against mmcv itself.
"""
import logging
import re

import pytest
import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmpose.registry import MODELS

from sspose_mm.cli import run_cli
from sspose_mm.errors import CheckpointError
from test_sharpose_model import tiny_backbone

C, DEPTH = 32, 4  # the tiny backbone's width and depth
# mmpretrain suffix -> timm/SHaRPoseViT suffix, per block, and their shapes.
BLOCK = {
    'ln1.weight': ('norm1.weight', (C, )),
    'ln1.bias': ('norm1.bias', (C, )),
    'attn.qkv.weight': ('attn.qkv.weight', (3 * C, C)),
    'attn.qkv.bias': ('attn.qkv.bias', (3 * C, )),
    'attn.proj.weight': ('attn.proj.weight', (C, C)),
    'attn.proj.bias': ('attn.proj.bias', (C, )),
    'ln2.weight': ('norm2.weight', (C, )),
    'ln2.bias': ('norm2.bias', (C, )),
    'ffn.layers.0.0.weight': ('mlp.fc1.weight', (4 * C, C)),
    'ffn.layers.0.0.bias': ('mlp.fc1.bias', (4 * C, )),
    'ffn.layers.1.weight': ('mlp.fc2.weight', (C, 4 * C)),
    'ffn.layers.1.bias': ('mlp.fc2.bias', (C, )),
}
OTHERS = {
    'patch_embed.projection.weight':
    ('patch_embed.proj.weight', (C, 3, 16, 16)),
    'patch_embed.projection.bias': ('patch_embed.proj.bias', (C, )),
    'ln1.weight': ('norm.weight', (C, )),
    'ln1.bias': ('norm.bias', (C, )),
}


def test_mmpretrain_module_names_are_mmcvs():
    """The FFN and patch-embedding names above are those of mmcv's modules
    (mmpretrain builds its ViT from them)."""
    from mmcv.cnn.bricks.transformer import FFN, PatchEmbed
    ffn = FFN(embed_dims=C, feedforward_channels=4 * C)
    assert {
        k: tuple(v.shape)
        for k, v in ffn.state_dict().items()
    } == {
        k[len('ffn.'):]: shape
        for k, (_, shape) in BLOCK.items() if k.startswith('ffn.')
    }
    embed = PatchEmbed(in_channels=3, embed_dims=C, kernel_size=16, stride=16)
    assert set(embed.state_dict()) == {
        k[len('patch_embed.'):]
        for k in OTHERS if k.startswith('patch_embed.')
    }


def synthetic_mae(naming: str) -> tuple:
    """A tiny ViT's weights (random, 4x4 grid + class position) as a file in
    ``naming`` would hold them, and the tensor each backbone key must get
    (position embeddings aside)."""
    generator = torch.Generator().manual_seed(0)

    def tensor(shape):
        return torch.randn(shape, generator=generator)

    weights, expected = {}, {}
    for i in range(DEPTH):
        for suffix, (ours, shape) in BLOCK.items():
            key = (f'backbone.layers.{i}.{suffix}'
                   if naming == 'mmpretrain' else f'blocks.{i}.{ours}')
            weights[key] = expected[f'blocks.{i}.{ours}'] = tensor(shape)
    for suffix, (ours, shape) in OTHERS.items():
        key = f'backbone.{suffix}' if naming == 'mmpretrain' else ours
        weights[key] = expected[ours] = tensor(shape)
    prefix = 'backbone.' if naming == 'mmpretrain' else ''
    weights[f'{prefix}cls_token'] = tensor((1, 1, C))
    weights[f'{prefix}pos_embed'] = tensor((1, 1 + 16, C))
    # Not for the backbone: MAE's decoder, mmpretrain's neck.
    if naming == 'mmpretrain':
        weights['neck.decoder_blocks.0.ln1.weight'] = tensor((C, ))
    else:
        weights['decoder_embed.weight'] = tensor((C, C))
    return weights, expected


def load(path) -> torch.nn.Module:
    backbone = MODELS.build(
        tiny_backbone(init_cfg=dict(type='Pretrained', checkpoint=str(path))))
    backbone.init_weights()
    return backbone


@pytest.mark.parametrize('naming,wrapper', [('mae', 'model'),
                                            ('mmpretrain', 'state_dict')])
def test_both_namings_load_tensor_for_tensor(naming, wrapper, tmp_path):
    weights, expected = synthetic_mae(naming)
    path = tmp_path / f'{naming}.pth'
    torch.save({wrapper: weights}, path)
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        backbone = load(path)
    finally:
        logger.removeHandler(handler)
    ours = backbone.state_dict()
    for key, value in expected.items():
        assert torch.equal(ours[key], value), key
    pos_embed = [v for k, v in weights.items() if k.endswith('pos_embed')
                 ][0][:, 1:].reshape(1, 4, 4, C).permute(0, 3, 1, 2)
    for stage, size in enumerate(((4, 3), (8, 6))):
        resized = F.interpolate(
            pos_embed, size=size, mode='bicubic', align_corners=False)
        torch.testing.assert_close(ours[f'pos_embed_list.{stage}'],
                                   resized.flatten(2).transpose(1, 2))

    # Loaded: blocks, patch embedding, norm, both position tables; missing:
    # the rest of the backbone; unexpected: cls_token and the decoder key.
    loaded = len(expected) + 2
    message = [
        r.getMessage() for r in records if 'SHaRPoseViT' in r.getMessage()
    ][-1]
    counts = re.search(
        r'loaded (\d+) tensors, missing (\d+) .*unexpected '
        r'(\d+)', message)
    assert counts, message
    assert tuple(map(int, counts.groups())) == (loaded, len(ours) - loaded, 2)


@pytest.mark.parametrize('drop', ['blocks', 'last block', 'patch embedding'])
def test_unloaded_blocks_stop_with_one_error_line(drop, tmp_path, capsys):
    """A file whose names do not give every block (here: none, or only 3 of
    4) or the patch embedding stops the run: CheckpointError, printed by the
    tools as one ``error:`` line that names a missing weight."""
    weights, _ = synthetic_mae('mmpretrain')
    gone = {
        'blocks': 'backbone.layers.',
        'last block': f'backbone.layers.{DEPTH - 1}.',
        'patch embedding': 'backbone.patch_embed.'
    }[drop]
    weights = {k: v for k, v in weights.items() if not k.startswith(gone)}
    path = tmp_path / 'partial.pth'
    torch.save({'state_dict': weights}, path)
    with pytest.raises(CheckpointError) as error:
        load(path)
    missing = {
        'blocks': 'blocks.0.',
        'last block': f'blocks.{DEPTH - 1}.',
        'patch embedding': 'patch_embed.proj.'
    }[drop]
    assert missing in str(error.value)
    with pytest.raises(SystemExit) as exit_:
        run_cli(lambda: load(path))
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: ')
    assert str(path) in lines[0] and missing in lines[0]


@pytest.mark.parametrize('content', [[torch.zeros(1)], {
    'model': {
        'blocks.0.norm1.weight': 'not a tensor'
    }
}])
def test_a_file_without_a_state_dict_of_tensors_is_named(content, tmp_path):
    """The state dict is unwrapped by ``plain_state_dict``, as every other
    checkpoint reader here: a file that holds none, or entries that are not
    tensors, stops with a CheckpointError naming the file (not an
    AttributeError from deep in the loader)."""
    path = tmp_path / 'odd.pth'
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load(path)

"""HigherPose backbone: HRNet-W32 with a structure-aware transformer.

HigherPose (jcong0226/higherpose, "SATPose: Enhancing Low-Resolution Human
Pose Estimation with Structure-Aware Transformer") adds two transformers to
HigherHRNet-W32: a *global* one over a pooled 1/8 view of the stem features
(a few channels, the coarse body structure) and a *local* one over the final
1/4 HRNet features after fusing both.

The released code attends across the batch instead of across positions and
keeps only position 0 (see ``docs/higherpose.md``). By default this
implementation does what the design describes, real self-attention over all
positions of each image (``attention_mode='spatial'``);
``attention_mode='released'`` computes what the released code computes.
Both go through the fused ``scaled_dot_product_attention`` of
:class:`~sspose_mm.models.utils.MultiheadSelfAttention`, so the 16384 tokens of
a 512x512 input never materialise an ``N x N`` matrix.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmpose.models.backbones import HRNet
from mmpose.models.backbones.resnet import get_expansion
from mmpose.registry import MODELS
from torch import Tensor, nn

from ...errors import ConfigError
from ..utils import (MultiheadSelfAttention, resize_position_embedding,
                     sine_position_embedding)

ATTENTION_MODES = ('spatial', 'released')


class StructureAwareTransformerLayer(nn.Module):
    """One layer of HigherPose's transformer, on a ``(B, C, h, w)`` map.

    ``q = LN1(x) + pos``; ``k = v = BN(DWConv1x1(x)) + pos`` (the depthwise
    conv acts on the un-normalised map); ``x = x + drop(attn(q, k, v))``;
    ``x = x + drop(FFN(LN2(x)))`` with a GELU FFN. The position embedding goes
    into queries, keys *and* values at every layer, as in the original.

    ``attention_mode='released'`` is the released code's attention: it hands
    its sequence-first tokens to an attention module that takes them as
    batch-first, so at each position the ``B`` images of the batch attend to
    each other, and it keeps the result of position 0 only, which it adds to
    every token. Only that position is computed here: one sequence of the
    ``B`` images' position-0 tokens. An image's output therefore depends on
    the other images of its batch (in training, and in a test batch of more
    than one image); alone, its attention weight is 1 and the added vector
    is ``out_proj(v_proj(BN(DWConv(x))[0] + pos[0]))``.

    Args:
        embed_dims (int): Channels ``C``.
        num_heads (int): Attention heads.
        feedforward_channels (int): FFN hidden width. Defaults to 2048.
        dropout (float): Dropout of the residual branches and FFN hidden
            layer. Defaults to 0.1.
        attn_drop (float): Dropout of the attention weights. The original
            uses 0.1; on CPU any non-zero value makes PyTorch fall back to
            the quadratic-memory attention kernel (13 GB instead of 0.5 GB
            at 16384 tokens), hence the default 0.
        attention_mode (str): ``'spatial'`` (attention over the positions
            of each image) or ``'released'`` (the released code's). Defaults
            to ``'spatial'``.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int = 2048,
                 dropout: float = 0.1,
                 attn_drop: float = 0.,
                 attention_mode: str = 'spatial') -> None:
        super().__init__()
        if attention_mode not in ATTENTION_MODES:
            raise ConfigError(f'attention_mode must be one of '
                              f'{ATTENTION_MODES}, got {attention_mode!r}')
        self.attention_mode = attention_mode
        self.norm1 = nn.LayerNorm(embed_dims)
        self.depthwise = nn.Sequential(
            nn.Conv2d(embed_dims, embed_dims, 1, groups=embed_dims),
            nn.BatchNorm2d(embed_dims))
        self.self_attn = MultiheadSelfAttention(embed_dims, num_heads,
                                                attn_drop)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, feedforward_channels), nn.GELU(),
            nn.Dropout(dropout), nn.Linear(feedforward_channels, embed_dims))
        self.dropout_attn = nn.Dropout(dropout)
        self.dropout_ffn = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        """``x``: ``(B, C, h, w)``; ``pos``: ``(h*w, C)``. Returns
        ``(B, h*w, C)`` tokens in row-major order."""
        tokens = x.flatten(2).transpose(1, 2)
        # The batch norm sees the whole map in both modes (its statistics in
        # training are the original's).
        key_value = self.depthwise(x).flatten(2).transpose(1, 2)
        if self.attention_mode == 'released':
            # Position 0 of the B images as one sequence (1, B, C); the
            # result (B, C), dropped out once, is added to every token.
            attended, _ = self.self_attn(
                self.norm1(tokens[None, :, 0]) + pos[0],
                key_value[None, :, 0] + pos[0])
            attended = attended[0, :, None]
        else:
            attended, _ = self.self_attn(
                self.norm1(tokens) + pos, key_value + pos)
        tokens = tokens + self.dropout_attn(attended)
        return tokens + self.dropout_ffn(self.ffn(self.norm2(tokens)))


class StructureAwareTransformer(nn.Module):
    """A stack of :class:`StructureAwareTransformerLayer` on a feature map.

    Args:
        num_layers (int): Layers ``L``.
        embed_dims (int): Channels ``C`` of the map.
        num_heads (int): Attention heads.
        feedforward_channels (int): FFN hidden width.
        dropout (float): Residual/FFN dropout.
        attn_drop (float): Attention-weight dropout.
        pos_embedding (str): ``'sine'`` (fixed 2-D sine of DETR, computed for
            the actual map size) or ``'learnable'`` (a ``grid_size`` table,
            bilinearly resized when the map has another size).
        grid_size (tuple[int, int], optional): ``(h, w)`` of the learnable
            table; required for ``'learnable'``.
        attention_mode (str): See :class:`StructureAwareTransformerLayer`.
    """

    def __init__(self,
                 num_layers: int,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 dropout: float,
                 attn_drop: float,
                 pos_embedding: str = 'sine',
                 grid_size: Optional[Tuple[int, int]] = None,
                 attention_mode: str = 'spatial') -> None:
        super().__init__()
        if pos_embedding not in ('sine', 'learnable'):
            raise ValueError('pos_embedding must be "sine" or "learnable", '
                             f'got {pos_embedding!r}')
        if pos_embedding == 'learnable' and grid_size is None:
            raise ValueError('a learnable position embedding needs the '
                             'grid size (the backbone\'s input_size)')
        self.layers = nn.ModuleList(
            StructureAwareTransformerLayer(
                embed_dims, num_heads, feedforward_channels, dropout,
                attn_drop, attention_mode) for _ in range(num_layers))
        self.pos_embedding = None
        if pos_embedding == 'learnable':
            self.pos_embedding = nn.Parameter(
                torch.randn(1, embed_dims, *grid_size))

    def _position(self, height: int, width: int, like: Tensor) -> Tensor:
        if self.pos_embedding is None:
            return sine_position_embedding(
                height,
                width,
                like.shape[1],
                device=like.device,
                dtype=like.dtype)
        table = self.pos_embedding.flatten(2).transpose(1, 2)
        grid = tuple(self.pos_embedding.shape[2:])
        if grid != (height, width):
            table = resize_position_embedding(
                table, grid, (height, width), interpolation='bilinear')
        # A copy, not a view: under no_grad a view of the parameter still
        # requires grad but has no grad_fn, which torch's module tracker
        # (FlopCounterMode, used by tools/benchmark.py) refuses.
        return table[0].clone()

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, h, w)`` in and out."""
        B, C, h, w = x.shape
        pos = self._position(h, w, x)
        for layer in self.layers:
            x = layer(x, pos).transpose(1, 2).reshape(B, C, h, w)
        return x


@MODELS.register_module()
class HigherPoseHRNet(HRNet):
    """HRNet with HigherPose's structure-aware transformer (SAT).

    After MMPose's :class:`~mmpose.models.backbones.HRNet` (``extra`` as for
    HRNet-W32 with ``stage4.multiscale_output=False``), in forward order:

    1. global branch from the ``layer1`` (stem) features
       ``(B, 256, H/4, W/4)``:
       1x1 conv to ``global_channels`` (4), average pooling to ``H/8 x W/8``,
       ``num_layers`` transformer layers (``global_channels`` wide), a
       transposed conv (k4, s2) back to ``H/4 x W/4``;
    2. fusion: concatenation with the HRNet output ``(B, 32, H/4, W/4)`` and a
       1x1 conv back to 32 channels;
    3. local transformer: ``num_layers`` layers, 32 wide, over all ``H/4 x
       W/4`` positions.

    By default differs from the released code in its attention, which mixes
    image positions here (the original's attends across the batch and keeps
    position 0 only; ``attention_mode='released'`` does that), and in the
    attention-weight dropout (see :class:`StructureAwareTransformerLayer`).
    Both transformers use the position embedding of ``pos_embedding``.

    Args:
        extra (dict): HRNet stage settings, as for MMPose's HRNet.
        num_layers (int): Layers of each transformer (6 for COCO, 4 for
            CrowdPose in the original). Defaults to 6.
        global_channels (int): Width of the global branch. Defaults to 4.
        num_heads (int): Heads of both transformers. Defaults to 4.
        feedforward_channels (int): FFN width. Defaults to 2048.
        dropout (float): Residual/FFN dropout. Defaults to 0.1.
        attn_drop (float): Attention-weight dropout in training (the
            original's is 0.1). Defaults to 0.
        attention_mode (str): ``'spatial'``: self-attention over the
            positions of each image; ``'released'``: the released code's
            computation, across the images of a batch at position 0 only
            (see :class:`StructureAwareTransformerLayer`). Defaults to
            ``'spatial'``.
        pos_embedding (str): ``'sine'`` or ``'learnable'``. Defaults to
            ``'sine'``.
        input_size (tuple[int, int], optional): ``(w, h)`` of the training
            input; sets the learnable tables to ``(h/8, w/8)`` and
            ``(h/4, w/4)``.
        **kwargs: Other arguments of MMPose's HRNet (``in_channels``,
            ``norm_cfg``, ``init_cfg``...).

    Returns (forward):
        tuple[Tensor]: One map ``(B, C, H/4, W/4)``, ``C`` = the first
        stage-4 branch width (32 for W32). ``H`` and ``W`` must be multiples
        of 32.
    """

    def __init__(self,
                 extra: dict,
                 num_layers: int = 6,
                 global_channels: int = 4,
                 num_heads: int = 4,
                 feedforward_channels: int = 2048,
                 dropout: float = 0.1,
                 attn_drop: float = 0.,
                 attention_mode: str = 'spatial',
                 pos_embedding: str = 'sine',
                 input_size: Optional[Tuple[int, int]] = None,
                 **kwargs) -> None:
        if extra['stage4'].get('multiscale_output', False):
            raise ValueError('HigherPoseHRNet fuses the 1/4 branch only: set '
                             'extra.stage4.multiscale_output=False')
        super().__init__(extra, **kwargs)
        stem_channels = (
            extra['stage1']['num_channels'][0] *
            get_expansion(self.blocks_dict[extra['stage1']['block']]))
        out_channels = extra['stage4']['num_channels'][0]
        global_grid = local_grid = None
        if input_size is not None:
            width, height = input_size
            global_grid = (height // 8, width // 8)
            local_grid = (height // 4, width // 4)
        transformer = dict(
            num_layers=num_layers,
            num_heads=num_heads,
            feedforward_channels=feedforward_channels,
            dropout=dropout,
            attn_drop=attn_drop,
            pos_embedding=pos_embedding,
            attention_mode=attention_mode)
        self.global_reduction = nn.Conv2d(stem_channels, global_channels, 1)
        self.global_transformer = StructureAwareTransformer(
            embed_dims=global_channels, grid_size=global_grid, **transformer)
        self.global_upsample = nn.ConvTranspose2d(
            global_channels,
            global_channels,
            4,
            stride=2,
            padding=1,
            bias=False)
        self.fusion = nn.Conv2d(out_channels + global_channels, out_channels,
                                1)
        self.local_transformer = StructureAwareTransformer(
            embed_dims=out_channels, grid_size=local_grid, **transformer)

    def init_weights(self) -> None:
        super().init_weights()
        # The original initialises the transformers' linear weights with
        # xavier (HRNet's init_cfg only covers convolutions). Its q, k and v
        # are three Linear(C, C): each block of the packed (3C, C)
        # in_proj_weight gets the bound of a (C, C) matrix, sqrt(2) wider
        # than xavier on the packed matrix would give.
        for transformer in (self.global_transformer, self.local_transformer):
            for module in transformer.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                elif isinstance(module, MultiheadSelfAttention):
                    with torch.no_grad():
                        for block in module.in_proj_weight.chunk(3):
                            nn.init.xavier_uniform_(block)

    def _hrnet_branches(self, stem: Tensor) -> Tensor:
        """HRNet stages 2-4 on the ``layer1`` output; the 1/4 branch."""
        branches = [stem]
        for transition, stage in ((self.transition1, self.stage2),
                                  (self.transition2, self.stage3),
                                  (self.transition3, self.stage4)):
            branches = stage([
                branches[i] if layer is None else layer(branches[-1])
                for i, layer in enumerate(transition)
            ])
        return branches[0]

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """``(B, 3, H, W)`` image in, ``((B, C, H/4, W/4),)`` out."""
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError('HigherPoseHRNet needs an input height and width '
                             f'divisible by 32, got {tuple(x.shape[2:])}')
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.relu(self.norm2(self.conv2(x)))
        stem = self.layer1(x)
        features = self._hrnet_branches(stem)

        # Halving an even map (H/4 with H a multiple of 32): the adaptive
        # pooling to (H/8, W/8) of the original, as the fixed 2x2 pooling,
        # whose CUDA backward is deterministic (the adaptive one has none).
        structure = F.avg_pool2d(self.global_reduction(stem), 2)
        structure = self.global_upsample(self.global_transformer(structure))
        fused = self.fusion(torch.cat((features, structure), dim=1))
        return (self.local_transformer(fused), )

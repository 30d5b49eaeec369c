"""HigherPose backbone: HRNet-W32 with a structure-aware transformer.

HigherPose (jcong0226/higherpose, "SATPose") adds to HigherHRNet-W32 a
*global* transformer over a pooled 1/8 view of the stem features (the coarse
body structure) and a *local* one over the final 1/4 HRNet features after
fusing both. Attention is fused (the 16384 tokens of a 512x512 input never
materialise an ``N x N`` matrix).
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

    ``attention_mode='released'`` is the released code's attention
    (docs/higherpose.md): it hands sequence-first tokens to a batch-first
    module, so the ``B`` images attend to each other, and adds the result
    at position 0 to every token. Only that position is computed here: one
    sequence of the ``B`` position-0 tokens. An image's output then depends
    on the other images of its batch; alone, its attention weight is 1 and
    the added vector is ``out_proj(v_proj(BN(DWConv(x))[0] + pos[0]))``.
    ``'spatial'`` (default) attends over the positions of each image, as
    the design describes.

    Args:
        dropout (float): Dropout of the residual branches and FFN hidden.
        attn_drop (float): Dropout of the attention weights. The original's
            0.1 makes PyTorch fall back on CPU to the quadratic-memory
            kernel (13 GB instead of 0.5 GB at 16384 tokens), hence 0.
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
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        """``x``: ``(B, C, h, w)``; ``pos``: ``(h*w, C)``. Returns
        ``(B, h*w, C)`` tokens in row-major order."""
        tokens = x.flatten(2).transpose(1, 2)
        # The batch norm sees the whole map in both modes, as the original's.
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
        tokens = tokens + self.dropout(attended)
        return tokens + self.dropout(self.ffn(self.norm2(tokens)))


class StructureAwareTransformer(nn.Module):
    """A stack of :class:`StructureAwareTransformerLayer` on a feature map.

    Args:
        pos_embedding (str): ``'sine'`` (DETR's fixed 2-D sine, computed for
            the actual map size) or ``'learnable'`` (a ``grid_size`` table,
            bilinearly resized for another map size).
        grid_size (tuple[int, int], optional): ``(h, w)`` of the learnable
            table; required for ``'learnable'``.
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

    def _position(self, height: int, width: int, x: Tensor) -> Tensor:
        if self.pos_embedding is None:
            return sine_position_embedding(
                height, width, x.shape[1], device=x.device, dtype=x.dtype)
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

    1. global branch on the ``layer1`` (stem) features ``(B, 256, H/4,
       W/4)``: 1x1 conv to ``global_channels``, average pooling to ``H/8 x
       W/8``, ``num_layers`` transformer layers, a transposed conv (k4, s2)
       back to ``H/4 x W/4``;
    2. fusion: concatenation with the HRNet output ``(B, 32, H/4, W/4)`` and a
       1x1 conv back to 32 channels;
    3. local transformer: ``num_layers`` layers over all ``H/4 x W/4``
       positions.

    Shapes: ``(B, 3, H, W)`` in, ``H`` and ``W`` multiples of 32; a 1-tuple
    ``(B, C, H/4, W/4)`` out, ``C`` the first stage-4 width (32 for W32).
    Differs from the released code by default in the attention and its
    dropout (see :class:`StructureAwareTransformerLayer`).

    Args:
        num_layers (int): Layers of each transformer (the original's 6 for
            COCO, 4 for CrowdPose).
        global_channels (int): Width of the global branch.
        attention_mode (str): ``'spatial'`` or ``'released'``.
        pos_embedding (str): ``'sine'`` or ``'learnable'``.
        input_size (tuple[int, int], optional): ``(w, h)`` of the training
            input; sets the learnable tables to ``(h/8, w/8)`` and
            ``(h/4, w/4)``.
        **kwargs: Other arguments of MMPose's HRNet.
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
        # The original's xavier on the transformers' linear weights (HRNet's
        # init_cfg covers convolutions only); its q, k and v are three
        # Linear(C, C), so each block of the packed in_proj_weight gets the
        # bound of a (C, C) matrix.
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
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError('HigherPoseHRNet needs an input height and width '
                             f'divisible by 32, got {tuple(x.shape[2:])}')
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.relu(self.norm2(self.conv2(x)))
        stem = self.layer1(x)
        features = self._hrnet_branches(stem)

        # The original's adaptive pooling to (H/8, W/8) of an even map, as
        # the fixed 2x2 pooling, whose CUDA backward is deterministic.
        structure = F.avg_pool2d(self.global_reduction(stem), 2)
        structure = self.global_upsample(self.global_transformer(structure))
        fused = self.fusion(torch.cat((features, structure), dim=1))
        return (self.local_transformer(fused), )

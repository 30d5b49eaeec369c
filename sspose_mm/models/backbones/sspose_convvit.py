"""SSpose's hybrid conv-transformer encoder (ConvMAE-style "ConvViT").

Masked-convolution stages, a transformer on the coarsest grid, and a
multi-scale fusion of the conv stages into the tokens; both the pose
backbone and the MAE pretrainer's encoder, so a pretraining checkpoint
initialises the pose model key for key.

Module names let MMPose's ``LayerDecayOptimWrapperConstructor`` assign the
official fine-tuning layer ids by prefix: ``patch_embed`` and ``pos_embed``
(everything before the transformer) id 0, ``layers.i`` id ``i + 1``, the
rest the top id. :mod:`sspose_mm.apis.checkpoint_layouts.sspose` maps the
official names onto these.
"""
import math
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.model import BaseModule, constant_init, xavier_init
from mmpose.registry import MODELS
from timm.layers import DropPath, LayerNorm2d, Mlp
from torch import Tensor, nn

from ...errors import CheckpointError, ConfigError
from ..utils import (MultiheadSelfAttention, ViTBlock, fit_position_table,
                     gather_tokens)

FUSION_POSITIONS = ('before_transformer', 'after_transformer', 'none')


def mae_sincos_position_embedding(h: int, w: int, dims: int) -> Tensor:
    """MAE's fixed 2-D sin-cos table for an ``h x w`` grid, ``(h*w, dims)``,
    row-major: the first ``dims/2`` channels encode the column, the rest the
    row, each as ``[sin, cos]`` of the position times
    ``1 / 10000**(i / (dims/4))``; in float64 as MAE, so the float32 result
    equals the official table bit for bit (timm's is float32, DETR's has
    other frequencies and channel order)."""
    if dims % 4:
        raise ConfigError(f'sin-cos position embedding needs dims divisible '
                          f'by 4, got {dims}')
    omega = 1. / 10000**(np.arange(dims // 4, dtype=np.float64) / (dims / 4))

    def encode(positions: np.ndarray) -> np.ndarray:
        angles = np.outer(positions.reshape(-1), omega)
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    rows, cols = np.meshgrid(
        np.arange(h, dtype=np.float64),
        np.arange(w, dtype=np.float64),
        indexing='ij')
    table = np.concatenate([encode(cols), encode(rows)], axis=1)
    return torch.from_numpy(table).float()


class ConvPatchEmbed(nn.Module):
    """Non-overlapping ``patch x patch`` conv -> LayerNorm -> GELU."""

    def __init__(self, in_channels: int, embed_dims: int,
                 patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(
            in_channels, embed_dims, patch_size, stride=patch_size)
        self.norm = LayerNorm2d(embed_dims, eps=1e-5)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C, H/p, W/p)``."""
        return self.act(self.norm(self.proj(x)))


class MaskedConvBlock(nn.Module):
    """The "masked convolution block" (ConvMAE's ``CBlock``):
    ``x + proj(masked_conv(value(norm1(x)) * visible))``, then
    ``x + mlp(norm2(x))`` with a 1x1-conv MLP. ``masked_conv`` (5x5
    depthwise) is the only spatial operation, so zeroing the value at masked
    positions (``visible`` 0) keeps them out of visible ones."""

    def __init__(self,
                 dims: int,
                 mlp_ratio: float = 4.,
                 drop_path: float = 0.) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dims, eps=1e-5)
        self.value = nn.Conv2d(dims, dims, 1)
        self.masked_conv = nn.Conv2d(dims, dims, 5, padding=2, groups=dims)
        self.proj = nn.Conv2d(dims, dims, 1)
        self.norm2 = LayerNorm2d(dims, eps=1e-5)
        self.mlp = Mlp(dims, int(dims * mlp_ratio), use_conv=True)
        self.drop_path = (
            DropPath(drop_path) if drop_path > 0 else nn.Identity())

    def forward(self, x: Tensor, visible: Optional[Tensor] = None) -> Tensor:
        """``(B, C, H, W)`` in and out; ``visible`` ``(B, 1, H, W)``."""
        value = self.value(self.norm1(x))
        if visible is not None:
            value = value * visible
        x = x + self.drop_path(self.proj(self.masked_conv(value)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class MultiScaleFusion(nn.Module):
    """Stage-1/2 features brought to the token grid by strided convs
    (the official ``stage1_output_decode``/``stage2_output_decode``) and
    summed, ``(B, N, C3)``."""

    def __init__(self, embed_dims: Sequence[int],
                 patch_sizes: Sequence[int]) -> None:
        super().__init__()
        c1, c2, c3 = embed_dims
        _, p2, p3 = patch_sizes
        self.stage1 = nn.Conv2d(c1, c3, p2 * p3, stride=p2 * p3)
        self.stage2 = nn.Conv2d(c2, c3, p3, stride=p3)

    def forward(self, stage1: Tensor, stage2: Tensor) -> Tensor:
        fused = self.stage1(stage1) + self.stage2(stage2)
        return fused.flatten(2).transpose(1, 2)


class HybridPatchEmbed(nn.Module):
    """Everything before the transformer: conv stages 1-2 (patch embedding
    + masked conv blocks), the stage-3 patch embedding, with ``fuse`` the
    multi-scale ``fusion`` summed into its tokens (the paper's figure), and
    the token ``linear`` projection. ``drop_paths``: per-block rates."""

    def __init__(self, embed_dims: Sequence[int], depths: Sequence[int],
                 patch_sizes: Sequence[int], mlp_ratio: float,
                 drop_paths: Sequence[float], fuse: bool) -> None:
        super().__init__()
        c1, c2, c3 = embed_dims
        p1, p2, p3 = patch_sizes
        self.embed1 = ConvPatchEmbed(3, c1, p1)
        self.blocks1 = nn.ModuleList(
            MaskedConvBlock(c1, mlp_ratio, drop_paths[i])
            for i in range(depths[0]))
        self.embed2 = ConvPatchEmbed(c1, c2, p2)
        self.blocks2 = nn.ModuleList(
            MaskedConvBlock(c2, mlp_ratio, drop_paths[depths[0] + i])
            for i in range(depths[1]))
        self.embed3 = ConvPatchEmbed(c2, c3, p3)
        self.fusion = (
            MultiScaleFusion(embed_dims, patch_sizes) if fuse else None)
        self.linear = nn.Linear(c3, c3)

    def forward(self,
                x: Tensor,
                visible: Optional[List[Tensor]] = None
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """Stage outputs ``(B, C1, H/p1, ...)``, ``(B, C2, ...)`` and the
        ``(B, h*w, C3)`` tokens after ``linear``; ``visible``: the stage-1
        and stage-2 masks ``(B, 1, H_i, W_i)``, or None."""
        visible1, visible2 = visible if visible is not None else (None, None)
        stage1 = self.embed1(x)
        for block in self.blocks1:
            stage1 = block(stage1, visible1)
        stage2 = self.embed2(stage1)
        for block in self.blocks2:
            stage2 = block(stage2, visible2)
        tokens = self.embed3(stage2).flatten(2).transpose(1, 2)
        if self.fusion is not None:
            tokens = tokens + self.fusion(stage1, stage2)
        return stage1, stage2, self.linear(tokens)


@MODELS.register_module()
class SSposeConvViT(BaseModule):
    """SSpose encoder: masked conv stages, transformer, multi-scale fusion.

    ``image (B,3,H,W)`` -> stage 1 ``(H/p1)`` -> stage 2 ``(H/(p1 p2))`` ->
    stage 3 embedding ``h x w = H/s x W/s`` (``s = p1 p2 p3``) -> tokens ->
    ``linear`` -> ``+ pos_embed`` -> ``depths[2]`` transformer layers ->
    ``norm``; the pose output is the normed token grid as a map.

    Sources disagree (docs/sspose.md): the released code has strides 4/8/16
    and no stage-3 conv blocks, the figure strides 2/4/8 and stage-3 conv
    blocks. This follows the code's structure (so released checkpoints fit)
    with configurable strides.

    Args:
        img_size (tuple[int, int]): ``(H, W)`` input the ``pos_embed`` table
            is sized for; other inputs are refused.
        patch_sizes (Sequence[int]): Strides of the three embeddings.
        embed_dims (Sequence[int]): Stage widths (ConvViT-B's by default).
        depths (Sequence[int]): Blocks per stage (conv, conv, transformer).
        drop_path_rate (float): Stochastic depth, linear over all blocks.
        fusion (str): ``'before_transformer'`` (the convs are
            ``patch_embed.fusion``, layer-decay id 0 like the rest of the
            transformer input), ``'after_transformer'`` (``fusion``, the
            official pretraining layout, top id) or ``'none'`` (no fusion
            convs; the official fine-tuning model).
        trainable_pos_embed (bool): Learn the sin-cos table (fine-tuning),
            or keep it fixed (MAE pretraining).
        init_cfg (dict, optional): mmengine init config, e.g. ``Pretrained``
            with ``prefix='backbone.'`` on a pretraining checkpoint.
    """

    def __init__(self,
                 img_size: Sequence[int] = (256, 192),
                 patch_sizes: Sequence[int] = (4, 2, 2),
                 embed_dims: Sequence[int] = (256, 384, 768),
                 depths: Sequence[int] = (2, 2, 11),
                 num_heads: int = 12,
                 mlp_ratio: float = 4.,
                 drop_path_rate: float = 0.,
                 fusion: str = 'after_transformer',
                 trainable_pos_embed: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('patch_sizes', patch_sizes),
                            ('embed_dims', embed_dims), ('depths', depths)):
            if len(value) != 3:
                raise ConfigError(f'SSposeConvViT.{name} needs 3 values '
                                  f'(stages 1-3), got {tuple(value)}')
        if fusion not in FUSION_POSITIONS:
            raise ConfigError(f'SSposeConvViT.fusion must be one of '
                              f'{FUSION_POSITIONS}, got {fusion!r}')
        self.stride = math.prod(patch_sizes)
        if any(size % self.stride for size in img_size):
            raise ConfigError(f'SSposeConvViT.img_size {tuple(img_size)} is '
                              f'not divisible by the total stride '
                              f'{self.stride} (patch_sizes '
                              f'{tuple(patch_sizes)})')
        self.img_size = tuple(img_size)
        self.patch_sizes = tuple(patch_sizes)
        self.grid = (img_size[0] // self.stride, img_size[1] // self.stride)
        self.embed_dims = embed_dims[-1]
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.patch_embed = HybridPatchEmbed(embed_dims, depths[:2],
                                            patch_sizes, mlp_ratio, rates,
                                            fusion == 'before_transformer')
        self.pos_embed = nn.Parameter(
            mae_sincos_position_embedding(*self.grid, self.embed_dims)[None],
            requires_grad=trainable_pos_embed)
        self.layers = nn.ModuleList(
            ViTBlock(self.embed_dims, num_heads, mlp_ratio, drop_path=rate)
            for rate in rates[sum(depths[:2]):])
        self.fusion = (
            MultiScaleFusion(embed_dims, patch_sizes)
            if fusion == 'after_transformer' else None)
        self.norm = nn.LayerNorm(self.embed_dims, eps=1e-6)
        self._init_like_mae()

    def _init_like_mae(self) -> None:
        """ConvMAE's ``initialize_weights``: xavier-uniform linears (the
        stage-3 conv viewed as one), LayerNorm 1/0; convs keep PyTorch's."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                xavier_init(module, distribution='uniform')
            elif isinstance(module, nn.LayerNorm):
                constant_init(module, 1)
            elif isinstance(module, MultiheadSelfAttention):
                # Same rule for the packed q/k/v as for timm's qkv Linear.
                nn.init.xavier_uniform_(module.in_proj_weight)
                nn.init.zeros_(module.in_proj_bias)
        weight = self.patch_embed.embed3.proj.weight.data
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))

    def init_weights(self) -> None:
        """Load ``init_cfg``; a missing local file stops with what to do
        (mmengine reads ``init_cfg`` before ``load_from``, so it must exist
        even when ``load_from`` names the encoder)."""
        checkpoint = (
            self.init_cfg.get('checkpoint')
            if isinstance(self.init_cfg, dict) else None)
        if (isinstance(checkpoint, str) and '://' not in checkpoint
                and not osp.isfile(checkpoint)):
            raise CheckpointError(
                f'the backbone init_cfg checkpoint {checkpoint} does not '
                'exist: run the pretraining config that writes it (see '
                'docs/sspose.md), point model.backbone.init_cfg.checkpoint '
                'at another encoder checkpoint, or set '
                'model.backbone.init_cfg=None to start from scratch or to '
                'load the encoder with load_from (which mmengine reads only '
                'after this initialisation).')
        super().init_weights()

    def visible_masks(self, visible: Tensor) -> List[Tensor]:
        """The token-grid mask ``(B, h, w)`` (1 = visible) block-upsampled to
        the stage-1 and stage-2 grids, ``(B, 1, H_i, W_i)`` each: hierarchical
        masking, every finer cell belongs to exactly one token."""
        _, p2, p3 = self.patch_sizes
        visible = visible[:, None].float()
        stage2 = visible.repeat_interleave(p3, 2).repeat_interleave(p3, 3)
        stage1 = stage2.repeat_interleave(p2, 2).repeat_interleave(p2, 3)
        return [stage1, stage2]

    def forward_tokens(self,
                       x: Tensor,
                       ids_keep: Optional[Tensor] = None,
                       visible: Optional[Tensor] = None) -> Tensor:
        """``(B, 3, H, W)`` normalised images -> ``(B, n, C)`` normed tokens
        of the ``(B, n)`` row-major ``ids_keep`` (None: all), in that order
        (MAE); ``visible``: the ``(B, h, w)`` token-grid mask (1 = visible)
        of the masked conv blocks, None masks nothing."""
        if tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f'SSposeConvViT got a {tuple(x.shape[-2:])} '
                             f'input but its pos_embed is for img_size '
                             f'{self.img_size}')
        masks = None if visible is None else self.visible_masks(visible)
        stage1, stage2, tokens = self.patch_embed(x, masks)
        tokens = tokens + self.pos_embed
        if ids_keep is not None:
            tokens = gather_tokens(tokens, ids_keep)
        for layer in self.layers:
            tokens, _ = layer(tokens)
        if self.fusion is not None:
            fused = self.fusion(stage1, stage2)
            tokens = tokens + (
                fused if ids_keep is None else gather_tokens(fused, ids_keep))
        return self.norm(tokens)

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """``(B, 3, H, W)`` -> ``((B, C, h, w),)``, the normed tokens."""
        tokens = self.forward_tokens(x)
        h, w = self.grid
        return (tokens.transpose(1, 2).reshape(len(x), -1, h, w), )

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        """Resize a checkpoint's ``pos_embed`` of another grid (e.g. 224x224
        pretraining's 14x14) to this model's."""
        key = prefix + 'pos_embed'
        table = state_dict.get(key)
        if table is not None and table.shape != self.pos_embed.shape:
            if table.shape[-1] != self.embed_dims:
                # Checked first: no resizing of the grid fits a table of
                # another width, it belongs to an encoder of another size.
                raise CheckpointError(
                    f'{key} has shape {tuple(table.shape)}, this model\'s '
                    f'{tuple(self.pos_embed.shape)}: the checkpoint\'s '
                    f'embedding width {table.shape[-1]} differs from this '
                    f'model\'s {self.embed_dims} (embed_dims[-1]); load a '
                    'checkpoint of an encoder of the same widths')
            state_dict[key] = fit_position_table(table, self.grid, key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

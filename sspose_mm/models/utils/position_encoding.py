import math
from functools import lru_cache
from typing import Optional, Tuple

import torch
from mmpose.models.heads.transformer_heads.transformers.utils import \
    PositionEmbeddingSineHW
from timm.layers import resample_abs_pos_embed


@lru_cache(maxsize=16)
def sine_position_embedding(height: int,
                            width: int,
                            dims: int,
                            *,
                            device: Optional[torch.device] = None,
                            dtype: torch.dtype = torch.float32
                            ) -> torch.Tensor:
    """Normalised 2D sine position embedding of DETR, as TransPose uses it:
    MMPose's ``PositionEmbeddingSineHW`` (``normalize=True``) of an
    unmasked ``height x width`` map.

    Rows and columns are numbered from 1 and divided by ``size + 1e-6``
    (times ``2 pi``); each axis gets ``dims // 2`` channels of interleaved
    sin/cos with frequencies ``10000 ** (2 * (i // 2) / (dims // 2))``; the
    y half comes first. TransPose stores this table for one input size in
    its checkpoints (``pos_embedding``); here it is computed for the actual
    feature size, so the same model runs at any input resolution.

    The table is computed in float32 on the CPU, then cast to ``dtype`` on
    ``device`` (default: the CPU); it is cached per size, device and dtype
    (so a model on a GPU does not copy it from the host, and wait for the
    GPU, in every forward), so the returned tensor is shared: do not modify
    it in place.

    Returns:
        Tensor: ``(height * width, dims)``, tokens in row-major order.
    """
    if dims % 2:
        raise ValueError(f'sine position embedding needs an even dimension, '
                         f'got {dims}')
    unmasked = torch.zeros(1, height, width, dtype=torch.bool)
    table = PositionEmbeddingSineHW(dims // 2, normalize=True)(unmasked)
    return table.flatten(2)[0].T.to(device=device or 'cpu', dtype=dtype)


def resize_position_embedding(table: torch.Tensor,
                              src_grid: Tuple[int, int],
                              dst_grid: Tuple[int, int],
                              interpolation: str = 'bicubic') -> torch.Tensor:
    """A ``(1, h*w, C)`` table (row-major, no class token) resized to
    another token grid by timm's ``resample_abs_pos_embed``, align_corners
    False and without antialiasing (timm's antialiased default weights the
    neighbours differently even when upsampling). ``interpolation`` is
    bicubic as MAE's and SHaRPose's loaders interpolate; HigherPose resizes
    its learnable table bilinearly."""
    return resample_abs_pos_embed(
        table,
        dst_grid,
        src_grid,
        num_prefix_tokens=0,
        interpolation=interpolation,
        antialias=False,
        align_corners=False)


def stored_grid(num_positions: int,
                grid: Tuple[int, int],
                class_token: bool = False
                ) -> Optional[Tuple[int, Tuple[int, int]]]:
    """How a checkpoint's table of ``num_positions`` rows lies on a token
    grid, for :func:`resize_position_embedding` to ``grid``: the number of
    leading class-token rows to drop (0, or 1 if ``class_token`` allows one,
    as timm/MAE ViTs store it) and the ``(h, w)`` of the rest; None when no
    reading fits. Square grids (what pretraining mostly uses) are read
    first, then grids of ``grid``'s aspect ratio; without, then with a
    class token."""
    h, w = grid
    for square in (True, False):
        for prefix in (0, 1) if class_token else (0, ):
            tokens = num_positions - prefix
            rows = (
                math.isqrt(tokens) if square else round(
                    math.sqrt(tokens * h / w)))
            cols = tokens // rows if rows else 0
            shaped = rows == cols if square else rows * w == cols * h
            if rows and rows * cols == tokens and shaped:
                return prefix, (rows, cols)
    return None

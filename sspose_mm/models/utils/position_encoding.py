import math
from functools import lru_cache
from typing import Optional, Tuple

import torch
from mmpose.models.heads.transformer_heads.transformers.utils import \
    PositionEmbeddingSineHW
from timm.layers import resample_abs_pos_embed

from ...errors import CheckpointError


@lru_cache(maxsize=16)
def sine_position_embedding(height: int,
                            width: int,
                            dims: int,
                            *,
                            device: Optional[torch.device] = None,
                            dtype: torch.dtype = torch.float32
                            ) -> torch.Tensor:
    """DETR's normalised 2D sine position embedding (MMPose's
    ``PositionEmbeddingSineHW``) of an unmasked ``height x width`` map, y
    half first: ``(height * width, dims)``, tokens row-major. Computed in
    float32 on the CPU, cast to ``dtype`` on ``device`` (default CPU) and
    cached per size, device and dtype (no host copy per forward), so the
    returned tensor is shared: do not modify it in place."""
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
    ``dst_grid`` by timm's ``resample_abs_pos_embed``, without its default
    antialiasing (which weights neighbours differently even when
    upsampling): bicubic as MAE's and SHaRPose's loaders, bilinear for
    HigherPose's learnable table."""
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
    grid: the leading class-token rows to drop (0, or 1 if ``class_token``
    allows one, as timm/MAE store it) and the ``(h, w)`` of the rest; None
    when no reading fits. Square grids (pretraining's) are tried first,
    then ``grid``'s aspect ratio; without, then with a class token."""
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


def fit_position_table(table: torch.Tensor,
                       grid: Tuple[int, int],
                       name: str,
                       class_token: bool = False) -> torch.Tensor:
    """A checkpoint's ``(1, [1 +] h*w, C)`` table, read by
    :func:`stored_grid`, resized to ``grid``: ``(1, grid_h * grid_w, C)``.

    Raises:
        CheckpointError: No reading fits; the message starts with ``name``.
    """
    positions = table.shape[1] if table.ndim == 3 else 0
    found = stored_grid(positions, grid, class_token) if positions else None
    if found is None:
        raise CheckpointError(
            f'{name} has {positions} positions (shape {tuple(table.shape)}):'
            f' not a grid{", nor a class token plus a grid," * class_token} '
            f'square or of the aspect ratio of {grid}, so it cannot be '
            'resized to this model\'s token grid')
    class_rows, source = found
    return resize_position_embedding(table[:, class_rows:], source, grid)

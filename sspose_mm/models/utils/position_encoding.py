import math
from functools import lru_cache
from typing import Optional, Tuple

import torch
from timm.layers import resample_abs_pos_embed


@lru_cache(maxsize=16)
def _sine_table(height: int, width: int, dims: int, temperature: float,
                scale: float, eps: float, device: torch.device,
                dtype: torch.dtype) -> torch.Tensor:
    """The table on ``device``: cached there, so a model on a GPU does not
    copy it from the host (and wait for the GPU) in every forward."""
    return _cpu_sine_table(height, width, dims, temperature, scale, eps).to(
        device=device, dtype=dtype)


def _cpu_sine_table(height: int, width: int, dims: int, temperature: float,
                    scale: float, eps: float) -> torch.Tensor:
    y = torch.arange(1, height + 1, dtype=torch.float32)
    x = torch.arange(1, width + 1, dtype=torch.float32)
    y = (y / (height + eps) * scale)[:, None].expand(height, width)
    x = (x / (width + eps) * scale)[None, :].expand(height, width)
    half = dims // 2
    steps = torch.arange(half, dtype=torch.float32)
    freqs = temperature**(2 * torch.div(steps, 2, rounding_mode='floor') /
                          half)

    def encode(coord: torch.Tensor) -> torch.Tensor:
        angles = coord[..., None] / freqs
        # sin on even channels, cos on odd ones, interleaved.
        return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()),
                           dim=3).flatten(2)

    return torch.cat((encode(y), encode(x)),
                     dim=2).reshape(height * width, dims)


def sine_position_embedding(height: int,
                            width: int,
                            dims: int,
                            temperature: float = 10000.,
                            scale: float = 2 * math.pi,
                            eps: float = 1e-6,
                            *,
                            device: Optional[torch.device] = None,
                            dtype: torch.dtype = torch.float32
                            ) -> torch.Tensor:
    """Normalised 2D sine position embedding of DETR, as TransPose uses it.

    Rows and columns are numbered from 1 and divided by ``size + eps``; each
    axis gets ``dims // 2`` channels of interleaved sin/cos with frequencies
    ``temperature ** (2 * (i // 2) / (dims // 2))``; the y half comes first.
    TransPose stores this table for one input size in its checkpoints
    (``pos_embedding``); here it is computed for the actual feature size, so
    the same model runs at any input resolution.

    The table is computed in float32 on the CPU, then cast to ``dtype``
    on ``device`` (default: the CPU); it is cached per size, device and
    dtype, so the returned tensor is shared: do not modify it in place.

    Returns:
        Tensor: ``(height * width, dims)``, tokens in row-major order.
    """
    if dims % 2:
        raise ValueError(f'sine position embedding needs an even dimension, '
                         f'got {dims}')
    return _sine_table(height, width, dims, float(temperature), float(scale),
                       float(eps), torch.device(device or 'cpu'), dtype)


def resize_position_embedding(table: torch.Tensor, src_grid: Tuple[int, int],
                              dst_grid: Tuple[int, int]) -> torch.Tensor:
    """A ``(1, h*w, C)`` table (row-major, no class token) resized to
    another token grid by timm's ``resample_abs_pos_embed``: bicubic,
    align_corners False and without antialiasing, as MAE's and SHaRPose's
    loaders interpolate (timm's antialiased default weights the neighbours
    differently even when upsampling)."""
    return resample_abs_pos_embed(
        table,
        dst_grid,
        src_grid,
        num_prefix_tokens=0,
        antialias=False,
        align_corners=False)


def stored_grid(num_positions: int,
                grid: Tuple[int, int],
                class_token: bool = False
                ) -> Optional[Tuple[int, Tuple[int, int]]]:
    """How a checkpoint's table of ``num_positions`` rows lies on a token
    grid, for :func:`resize_position_embedding` to ``grid``: the number of
    leading class-token rows to drop (0, else 1 if ``class_token`` allows
    one, as timm/MAE ViTs store it) and the ``(h, w)`` of the rest, of
    ``grid``'s aspect ratio when the count allows it, else square; None
    when it is neither."""
    h, w = grid
    for prefix in (0, 1) if class_token else (0, ):
        tokens = num_positions - prefix
        rows = round(math.sqrt(tokens * h / w))
        if rows and tokens % rows == 0 and rows * w == tokens // rows * h:
            return prefix, (rows, tokens // rows)
        side = math.isqrt(tokens)
        if side and side * side == tokens:
            return prefix, (side, side)
    return None

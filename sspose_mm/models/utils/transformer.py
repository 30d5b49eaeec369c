import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp
from torch import Tensor, nn

from ...errors import ConfigError

# CUDA's fused kernels need head dims of multiples of 8 (flash) or 16 bytes
# (memory-efficient); other sizes fall back to the math kernel, which stores
# every N x N matrix for backward. The CPU's fused kernel takes any size.
ALIGNED_ATTENTION_DEVICES = ('cuda', )
HEAD_DIM_MULTIPLE = 8
# The CPU's fused kernel takes no dropout: with it PyTorch falls back to its
# math kernel, which holds the N x N weights too and adds two passes of
# "safe softmax", so there the explicit computation is faster.
FUSED_DROPOUT_DEVICES = ('cuda', )


def attention_weights(query: Tensor,
                      key: Tensor,
                      attn_mask: Optional[Tensor] = None,
                      is_causal: bool = False,
                      scale: Optional[float] = None) -> Tensor:
    """``(..., L, S)`` weights ``softmax(q k^T * scale + mask)`` (before
    dropout) of ``(..., L, d)`` queries and ``(..., S, d)`` keys, as in
    ``F.scaled_dot_product_attention``: ``scale`` 1/sqrt(d) by default, a
    boolean ``attn_mask`` marks the allowed pairs, a float one is added."""
    scale = query.shape[-1]**-0.5 if scale is None else scale
    logits = (query * scale) @ key.transpose(-2, -1)
    if is_causal:  # exclusive with attn_mask, as in the fused function
        attn_mask = torch.ones(
            logits.shape[-2:], dtype=torch.bool, device=logits.device).tril()
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            logits = logits.masked_fill(~attn_mask, -math.inf)
        else:
            logits = logits + attn_mask
    return logits.softmax(dim=-1)


def explicit_attention(query: Tensor,
                       key: Tensor,
                       value: Tensor,
                       attn_mask: Optional[Tensor] = None,
                       dropout_p: float = 0.,
                       is_causal: bool = False,
                       scale: Optional[float] = None) -> Tensor:
    """``F.scaled_dot_product_attention`` step by step, holding the
    ``(..., L, S)`` weights as ``nn.MultiheadAttention`` does (no
    grouped-query attention, which no module here or in timm uses)."""
    weights = attention_weights(query, key, attn_mask, is_causal, scale)
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    return weights @ value


def scaled_dot_product_attention(q: Tensor,
                                 k: Tensor,
                                 v: Tensor,
                                 dropout_p: float = 0.) -> Tensor:
    """``F.scaled_dot_product_attention`` of ``(B, heads, N, d)`` tensors,
    ``d`` zero-padded to a multiple of 8 on :data:`ALIGNED_ATTENTION_DEVICES`
    so that the fused kernels run there (same result: the scale stays
    ``1 / sqrt(d)``, the padded output columns are cut off); explicit
    (:func:`explicit_attention`) with dropout on the CPU."""
    if dropout_p > 0 and q.device.type not in FUSED_DROPOUT_DEVICES:
        return explicit_attention(q, k, v, dropout_p=dropout_p)
    head_dim = q.shape[-1]
    padding = -head_dim % HEAD_DIM_MULTIPLE
    if q.device.type not in ALIGNED_ATTENTION_DEVICES or not padding:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    q, k, v = (F.pad(t, (0, padding)) for t in (q, k, v))
    out = F.scaled_dot_product_attention(
        q, k, v, dropout_p=dropout_p, scale=head_dim**-0.5)
    return out[..., :head_dim]


def gather_tokens(tokens: Tensor, ids: Tensor) -> Tensor:
    """``tokens[b, ids[b]]``: ``(B, N, C)`` tokens and ``(B, n)`` ids ->
    ``(B, n, C)``."""
    return tokens.gather(1, ids[..., None].expand(-1, -1, tokens.shape[-1]))


class MultiheadSelfAttention(nn.Module):
    """The package's one multi-head attention module.

    ``out_proj(softmax(q k^T / sqrt(d)) v)`` by the fused
    :func:`scaled_dot_product_attention`. The head-averaged post-softmax
    (pre-dropout) weights are computed beside it, so the output stays bit
    for bit the same, when ``need_weights`` (SHaRPose's patch ranking) or
    ``record_attention`` (:func:`sspose_mm.apis.recording_attention`) asks.
    The caller decides what goes in, as for ``nn.MultiheadAttention``;
    inputs that are the same tensor share one projection.

    Args:
        embed_dims (int): Token dimension ``C``, divisible by ``num_heads``.
        attn_drop (float): Dropout on the attention weights in training.
        qkv_bias (bool): Bias of the q/k/v projection.
        layout (str): ``'torch'``: ``nn.MultiheadAttention``'s packed
            ``in_proj_weight``/``in_proj_bias`` and ``out_proj`` (TransPose,
            SSpose, HigherPose), xavier-initialised as there. ``'timm'``:
            timm ViT's ``qkv`` and ``proj`` Linears (SHaRPose, MAE). Both
            keep q, k and v (each head-major) in this row order.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 attn_drop: float = 0.,
                 qkv_bias: bool = True,
                 layout: str = 'torch') -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ConfigError(f'embed_dims {embed_dims} is not divisible by '
                              f'num_heads {num_heads}')
        if layout not in ('torch', 'timm'):
            raise ConfigError(f'attention layout must be "torch" or "timm", '
                              f'got {layout!r}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.layout = layout
        self.record_attention = False
        if layout == 'timm':
            self.qkv = nn.Linear(embed_dims, 3 * embed_dims, bias=qkv_bias)
            self.proj = nn.Linear(embed_dims, embed_dims)
            return
        self.in_proj_weight = nn.Parameter(
            torch.empty(3 * embed_dims, embed_dims))
        self.in_proj_bias = (
            nn.Parameter(torch.zeros(3 * embed_dims)) if qkv_bias else None)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self,
                query: Tensor,
                key: Optional[Tensor] = None,
                value: Optional[Tensor] = None,
                need_weights: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """``(B, N, C)`` query, key (None: ``query``) and value (None:
        ``key``) -> output ``(B, N, C)`` and, when recording or
        ``need_weights``, the head-averaged weights ``(B, N, N)``, else
        None."""
        key = query if key is None else key
        value = key if value is None else value
        if self.layout == 'timm':
            weight, bias, out_proj = self.qkv.weight, self.qkv.bias, self.proj
        else:
            weight, bias = self.in_proj_weight, self.in_proj_bias
            out_proj = self.out_proj
        inputs, C = (query, key, value), self.embed_dims
        # Runs of one and the same input share a matrix product.
        projected, first = [], 0
        for end in (1, 2, 3):
            if end < 3 and inputs[end] is inputs[first]:
                continue
            rows = slice(first * C, end * C)
            projected += F.linear(inputs[first], weight[rows],
                                  None if bias is None else bias[rows]).chunk(
                                      end - first, dim=-1)
            first = end
        B, N, _ = query.shape
        q, k, v = (
            t.reshape(B, t.shape[1], self.num_heads,
                      C // self.num_heads).transpose(1, 2) for t in projected)
        drop = self.attn_drop if self.training else 0.
        out = scaled_dot_product_attention(q, k, v, dropout_p=drop)
        attention = None
        if self.record_attention or need_weights:
            attention = attention_weights(q, k).mean(dim=1)
        return out_proj(out.transpose(1, 2).reshape(B, N, C)), attention


class ViTBlock(nn.Module):
    """Pre-norm ViT block with timm ``Block``'s names that also returns
    its attention weights (timm's attention returns one tensor):
    ``x + drop_path(drop(attn(norm1(x))))``, ``x + drop_path(mlp(norm2(x)))``.

    Args:
        mlp_ratio (float): MLP hidden width / ``C``.
        drop_rate (float): Dropout after the attention and MLP projections.
        drop_path (float): Stochastic depth of both residual branches.
        layout (str): See :class:`MultiheadSelfAttention`.
        norm_eps (float): LayerNorm eps, ViT's and MAE's 1e-6 by default
            (SHaRPose's official model keeps PyTorch's 1e-5).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path: float = 0.,
                 layout: str = 'torch',
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.attn = MultiheadSelfAttention(embed_dims, num_heads,
                                           attn_drop_rate, qkv_bias, layout)
        self.proj_drop = nn.Dropout(drop_rate)
        self.drop_path = (
            DropPath(drop_path) if drop_path > 0 else nn.Identity())
        self.norm2 = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop=drop_rate)

    def forward(self,
                x: Tensor,
                need_weights: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """``(B, N, C)`` in and out, plus the attention as
        :meth:`MultiheadSelfAttention.forward` returns it."""
        attended, attention = self.attn(
            self.norm1(x), need_weights=need_weights)
        x = x + self.drop_path(self.proj_drop(attended))
        x = x + self.drop_path(self.mlp(self.norm2(x)))
        return x, attention


class PostNormEncoderLayer(nn.Module):
    """DETR's post-norm Transformer encoder layer, as TransPose uses it,
    with the official parameter names:
    ``x = norm1(x + drop(attn(q=k=x+pos, v=x)))``;
    ``x = norm2(x + drop(linear2(drop(act(linear1(x))))))``.

    Args:
        dropout (float): Dropout on attention weights, residual branches and
            the FFN hidden layer.
        activation (str): ``'relu'`` or ``'gelu'``.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 dropout: float = 0.1,
                 activation: str = 'relu') -> None:
        super().__init__()
        activations = {'relu': nn.ReLU, 'gelu': nn.GELU}
        if activation not in activations:
            raise ValueError(f'activation must be one of {sorted(activations)}'
                             f', got {activation!r}')
        self.self_attn = MultiheadSelfAttention(
            embed_dims, num_heads, attn_drop=dropout)
        self.linear1 = nn.Linear(embed_dims, feedforward_channels)
        self.linear2 = nn.Linear(feedforward_channels, embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.activation = activations[activation]()

    def forward(self, x: Tensor, pos: Optional[Tensor] = None) -> Tensor:
        """``(B, N, C)`` tokens in and out; ``pos`` ``(N, C)`` or
        ``(B, N, C)`` is added to queries and keys."""
        qk = x if pos is None else x + pos
        attended, _ = self.self_attn(qk, qk, x)
        x = self.norm1(x + self.dropout(attended))
        hidden = self.dropout(self.activation(self.linear1(x)))
        return self.norm2(x + self.dropout(self.linear2(hidden)))

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Devices whose fused attention kernels need aligned head dimensions. On CUDA
# PyTorch's memory-efficient kernel takes head dims divisible by 16 bytes
# (4 in fp32, 8 in fp16/bf16) and flash attention multiples of 8; any other
# size falls back to the math kernel, which stores every (N x N) attention
# matrix for the backward pass. The CPU's fused kernel takes any size, so
# padding there would only add work (8x for a head dim of 1).
ALIGNED_ATTENTION_DEVICES = ('cuda', )
HEAD_DIM_MULTIPLE = 8


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor,
                                 dropout_p: float = 0.) -> Tensor:
    """``F.scaled_dot_product_attention`` of ``(B, heads, N, d)`` tensors,
    with ``d`` zero-padded to a multiple of 8 on devices in
    :data:`ALIGNED_ATTENTION_DEVICES`, so that the fused kernels run there.

    Same mathematics: zero columns of ``q`` and ``k`` add nothing to the dot
    products, the scale stays ``1 / sqrt(d)`` of the original size, and the
    zero columns of ``v`` only produce output columns that are cut off.
    """
    head_dim = q.shape[-1]
    padding = -head_dim % HEAD_DIM_MULTIPLE
    if q.device.type not in ALIGNED_ATTENTION_DEVICES or not padding:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    q, k, v = (F.pad(t, (0, padding)) for t in (q, k, v))
    out = F.scaled_dot_product_attention(
        q, k, v, dropout_p=dropout_p, scale=head_dim**-0.5)
    return out[..., :head_dim]


class MultiheadSelfAttention(nn.Module):
    """Self-attention with position embeddings added to queries and keys.

    Parameters are laid out like ``nn.MultiheadAttention`` (packed
    ``in_proj_weight``/``in_proj_bias``, ``out_proj``) so official DETR-style
    checkpoints map by name. Unlike ``nn.MultiheadAttention`` the values get no
    position embedding, batches come first, and the ordinary forward runs
    :func:`scaled_dot_product_attention` (fused, never materialising the
    ``N x N`` weights, on CUDA too). Only while ``record_attention`` is set
    is the softmax also computed explicitly (pre-dropout) and returned,
    averaged over heads.

    Args:
        embed_dims (int): Token dimension ``C``.
        num_heads (int): Number of heads; ``C`` must be divisible by it.
        attn_drop (float): Dropout on the attention weights in training.
    """

    def __init__(self, embed_dims: int, num_heads: int,
                 attn_drop: float = 0.) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} is not divisible by '
                             f'num_heads {num_heads}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.attn_drop = attn_drop
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dims,
                                                       embed_dims))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dims))
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.record_attention = False
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor,
                pos: Optional[Tensor] = None) -> Tuple[Tensor, Optional[Tensor]]:
        """
        Args:
            x (Tensor): Tokens ``(B, N, C)``.
            pos (Tensor, optional): Position embedding ``(N, C)`` or
                ``(B, N, C)``, added to queries and keys.

        Returns:
            tuple: Output ``(B, N, C)`` and, when ``record_attention`` is set,
            the head-averaged post-softmax attention ``(B, N, N)``, else None.
        """
        C = x.shape[-1]
        qk_in = x if pos is None else x + pos
        w_qk, w_v = self.in_proj_weight.split((2 * C, C))
        b_qk, b_v = self.in_proj_bias.split((2 * C, C))
        q, k = F.linear(qk_in, w_qk, b_qk).chunk(2, dim=-1)
        v = F.linear(x, w_v, b_v)
        out, attention = self._attend(q, k, v)
        return self.out_proj(out), attention

    def _attend(self, q: Tensor, k: Tensor, v: Tensor,
                need_weights: bool = False) -> Tuple[Tensor, Optional[Tensor]]:
        """Multi-head attention of projected ``(B, N, C)`` queries, keys and
        values; returns the ``(B, N, C)`` mix of the heads and, when
        recording or ``need_weights``, the head-averaged weights ``(B, N, N)``.
        """
        B, N, C = q.shape
        q, k, v = (t.reshape(B, N, self.num_heads, C // self.num_heads)
                   .transpose(1, 2) for t in (q, k, v))
        drop = self.attn_drop if self.training else 0.
        out = scaled_dot_product_attention(q, k, v, dropout_p=drop)
        attention = None
        if self.record_attention or need_weights:
            # Computed beside the fused kernel, not instead of it, so that
            # recording leaves the output bit for bit unchanged.
            logits = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
            attention = logits.softmax(dim=-1).mean(dim=1)
        return out.transpose(1, 2).reshape(B, N, C), attention


class PostNormEncoderLayer(nn.Module):
    """DETR's post-norm Transformer encoder layer, as TransPose uses it.

    ``x = norm1(x + drop(attn(q=k=x+pos, v=x)))``;
    ``x = norm2(x + drop(linear2(drop(act(linear1(x))))))``.
    Sub-module names follow the official layer so checkpoints map by prefix.

    Args:
        embed_dims (int): Token dimension ``C``.
        num_heads (int): Attention heads.
        feedforward_channels (int): Hidden width of the FFN.
        dropout (float): Dropout on attention weights, residual branches and
            the FFN hidden layer. Defaults to 0.1.
        activation (str): ``'relu'`` or ``'gelu'``. Defaults to ``'relu'``.
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
        self.self_attn = MultiheadSelfAttention(embed_dims, num_heads,
                                                attn_drop=dropout)
        self.linear1 = nn.Linear(embed_dims, feedforward_channels)
        self.linear2 = nn.Linear(feedforward_channels, embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.activation = activations[activation]()

    def forward(self, x: Tensor, pos: Optional[Tensor] = None) -> Tensor:
        """``(B, N, C)`` tokens in and out; ``pos`` as in the attention."""
        attended, _ = self.self_attn(x, pos)
        x = self.norm1(x + self.dropout1(attended))
        hidden = self.dropout(self.activation(self.linear1(x)))
        return self.norm2(x + self.dropout2(self.linear2(hidden)))

"""Attention maps of this package's models, for inspection and figures.

Ordinary forward passes use the fused scaled-dot-product attention and never
hold the ``N x N`` weights. Recording makes every
:class:`~sspose_mm.models.utils.MultiheadSelfAttention` also compute its
weights explicitly, beside the unchanged fused output, for the duration of one
block of code only.
"""
from contextlib import contextmanager
from typing import Iterator, List

import torch
from torch import Tensor, nn

from ..models.utils import MultiheadSelfAttention


@contextmanager
def recording_attention(model: nn.Module) -> Iterator[List[Tensor]]:
    """Record attention maps of every forward run inside the ``with`` block.

    Use it to get the predictions and the attention of one and the same
    forward pass (e.g. ``model.test_step`` with its data preprocessor).

    Args:
        model (nn.Module): Any model containing ``MultiheadSelfAttention``.

    Yields:
        list[Tensor]: Filled during the block with one ``(B, N, N)``
        head-averaged post-softmax map per attention call, in call order
        (for TransPose: one per encoder layer). Weights are taken before
        attention dropout, so in training mode they differ from what was
        applied.

    Raises:
        ValueError: The model has no attention module.
    """
    modules = [
        m for m in model.modules() if isinstance(m, MultiheadSelfAttention)
    ]
    if not modules:
        raise ValueError(f'{type(model).__name__} has no attention module '
                         '(MultiheadSelfAttention) whose maps could be '
                         'recorded.')
    maps: List[Tensor] = []
    flags = [m.record_attention for m in modules]
    handles = []

    def keep(_module: nn.Module, _args: tuple, output: tuple) -> None:
        maps.append(output[1].detach())

    try:
        for module in modules:
            module.record_attention = True
            handles.append(module.register_forward_hook(keep))
        yield maps
    finally:
        for handle in handles:
            handle.remove()
        for module, flag in zip(modules, flags):
            module.record_attention = flag


def collect_attention(model: nn.Module, inputs: Tensor) -> List[Tensor]:
    """Attention maps of one forward pass, e.g. for TransPose's figures.

    Args:
        model (nn.Module): A pose estimator of this package, usually in eval
            mode (its mode is left as it is).
        inputs (Tensor): ``(B, 3, H, W)`` already normalised images on the
            model's device; the data preprocessor is not applied.

    Returns:
        list[Tensor]: One ``(B, N, N)`` head-averaged post-softmax map per
        attention call, in order (TransPose: per encoder layer, ``N = h*w``
        tokens in row-major order; row ``q`` is what token ``q`` attends to).

    Raises:
        ValueError: The model has no attention module.
    """
    with recording_attention(model) as maps, torch.no_grad():
        model(inputs, None, mode='tensor')
    return maps

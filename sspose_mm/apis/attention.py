"""Attention maps of this package's models, for inspection and figures.

Forward passes use fused attention and never hold the ``N x N`` weights;
recording makes every :class:`~sspose_mm.models.utils.MultiheadSelfAttention`
also compute them, beside the unchanged fused output, inside one block.
"""
from contextlib import contextmanager
from typing import Iterator, List

import torch
from torch import Tensor, nn

from ..models.utils import MultiheadSelfAttention


@contextmanager
def recording_attention(model: nn.Module) -> Iterator[List[Tensor]]:
    """Record the attention maps of every forward pass inside the block,
    e.g. to get predictions (``model.test_step``) and attention of one pass.

    Yields:
        list[Tensor]: Filled during the block with one ``(B, N, N)``
        head-averaged post-softmax map per attention call, in call order
        (TransPose: one per encoder layer); taken before attention dropout.

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

    def keep(_module: nn.Module, _args: tuple, output: tuple) -> None:
        maps.append(output[1].detach())

    flags = [m.record_attention for m in modules]
    handles = [m.register_forward_hook(keep) for m in modules]
    try:
        for module in modules:
            module.record_attention = True
        yield maps
    finally:
        for handle, module, flag in zip(handles, modules, flags):
            handle.remove()
            module.record_attention = flag


def collect_attention(model: nn.Module, inputs: Tensor) -> List[Tensor]:
    """The maps of :func:`recording_attention` for one forward pass of
    ``inputs``, ``(B, 3, H, W)`` normalised images on the model's device (no
    data preprocessor; the model's train/eval mode is kept). For TransPose
    ``N = h*w`` tokens in row-major order; row ``q`` is what token ``q``
    attends to.

    Raises:
        ValueError: The model has no attention module.
    """
    with recording_attention(model) as maps, torch.no_grad():
        model(inputs, None, mode='tensor')
    return maps

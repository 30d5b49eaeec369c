"""The fast inference path, and the "original computation" it is measured
against.

:func:`prepare_for_inference` makes a trained top-down model compute the
same heatmaps (up to float round-off) in less time: batch norms folded into
the convolution feeding them; weights in channels-last order, which oneDNN's
CPU convolutions and the necks' token flattening prefer; optionally
``torch.compile``. The package's attention is always fused;
:func:`original_computation` materialises the weights, as the official
implementations do, inside a ``with`` block, so the benchmark times both on
the same weights.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..errors import ConfigError
from ..models.utils.transformer import explicit_attention


def model_input_size(model: nn.Module, cfg=None) -> Tuple[int, int]:
    """The ``(H, W)`` crop size of a top-down model: its head codec's
    ``input_size`` (``(W, H)`` in MMPose), else ``cfg.codec``'s.

    Raises:
        ConfigError: Neither states an input size.
    """
    decoder = getattr(getattr(model, 'head', None), 'decoder', None)
    size = getattr(decoder, 'input_size', None)
    if size is None and cfg is not None:
        size = (cfg.get('codec') or {}).get('input_size')
    if size is None:
        raise ConfigError(
            f'cannot tell the input size of {type(model).__name__}: its head '
            'has no decoder with input_size and the config no codec; give '
            'the size explicitly (e.g. --input 256x192).')
    width, height = size
    return int(height), int(width)


def fold_batch_norms(model: nn.Module, example: Tensor) -> int:
    """Fold every batch norm that directly follows a (transposed)
    convolution into it, in place; returns how many were folded.

    One pass of ``example`` (``(B, 3, H, W)``) shows which module consumes
    which output; a pair is folded (the norm becomes ``nn.Identity``) only
    when both run once and the convolution's output feeds no other module.
    Uses outside modules (``bn(conv(x)) + conv(x)`` on one stored tensor)
    are unseen: such a model must not be folded (the benchmark shows it).

    Raises:
        ValueError: The model is in training mode (its norms still change).
    """
    if model.training:
        raise ValueError('fold_batch_norms needs a model in eval mode.')
    producer: Dict[int, Tuple[nn.Module, Tensor]] = {}
    consumers: Dict[int, List[nn.Module]] = {}
    calls: Dict[nn.Module, int] = {}

    def before(module: nn.Module, args: tuple) -> None:
        calls[module] = calls.get(module, 0) + 1
        for arg in args:
            produced = producer.get(id(arg))
            # Conv outputs are kept alive, so a match is that very tensor.
            if produced is not None and produced[1] is arg:
                consumers.setdefault(id(arg), []).append(module)

    def after(module: nn.Module, _args: tuple, output) -> None:
        if isinstance(output, Tensor):
            # Kept, so that its id is not reused during the pass.
            producer[id(output)] = (module, output)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_pre_hook(before) for m in leaves]
    handles += [
        m.register_forward_hook(after) for m in leaves
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    try:
        with torch.no_grad():
            model(example, None, mode='tensor')
    finally:
        for handle in handles:
            handle.remove()

    pairs = []
    for tensor_id, (conv, _) in producer.items():
        users = consumers.get(tensor_id, [])
        if (len(users) == 1 and isinstance(users[0], _BatchNorm)
                and calls[conv] == calls[users[0]] == 1
                and users[0].running_mean is not None):
            pairs.append((conv, users[0]))
    names = {module: name for name, module in model.named_modules()}
    for conv, norm in pairs:
        _fold_into_conv(conv, norm)
        parent_name, _, attr = names[norm].rpartition('.')
        setattr(model.get_submodule(parent_name), attr, nn.Identity())
    return len(pairs)


@torch.no_grad()
def _fold_into_conv(conv: nn.Module, norm: _BatchNorm) -> None:
    """``norm(conv(x)) == conv'(x)``, by torch's ``fuse_conv_bn_weights``."""
    transposed = isinstance(conv, nn.ConvTranspose2d)
    weight, groups = conv.weight, conv.groups
    if transposed:
        # (in, out / groups, kh, kw): torch scales axis 1 as the output
        # channels, so the groups' blocks of them are laid out along it.
        weight = weight.unflatten(0, (groups, -1)).transpose(0, 1)
        weight = weight.flatten(1, 2)
    weight, conv.bias = fuse_conv_bn_weights(weight, conv.bias,
                                             norm.running_mean,
                                             norm.running_var, norm.eps,
                                             norm.weight, norm.bias,
                                             transposed)
    if transposed:
        weight = weight.unflatten(1, (groups, -1)).transpose(0, 1)
        weight = nn.Parameter(weight.flatten(0, 1))
    conv.weight = weight


def prepare_for_inference(model: nn.Module,
                          input_size: Optional[Sequence[int]] = None,
                          fold_bn: bool = True,
                          channels_last: bool = True,
                          compile: bool = False) -> nn.Module:
    """Make a top-down model compute its heatmaps faster, in place; returns
    ``model`` in eval mode.

    Load weights first: the model is for inference only afterwards (folded
    norms cannot be trained, nor load into an unfolded model).
    ``input_size`` ``(H, W)`` (default :func:`model_input_size`) is the crop
    of the one pass that finds conv/norm pairs. ``compile`` compiles
    backbone, neck and head (the first calls take minutes on a CPU).
    """
    model.eval()
    if fold_bn:
        height, width = input_size or model_input_size(model)
        example = next(model.parameters()).new_zeros(1, 3, height, width)
        fold_batch_norms(model, example)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        for name in ('backbone', 'neck', 'head'):
            part = getattr(model, name, None)
            if part is not None:
                # forward, not the module: the estimator calls head.forward.
                part.forward = torch.compile(part.forward)
    return model


@contextmanager
def original_computation() -> Iterator[None]:
    """Run attention unfused inside the block, the speed benchmark's
    baseline: ``F.scaled_dot_product_attention`` (this package's and timm's)
    is :func:`explicit_attention` in every thread until the block ends.
    With unfolded batch norms this is the official implementations'
    computation.
    """
    fused = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = explicit_attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = fused

"""The fast inference path, and the "original computation" it is measured
against.

:func:`prepare_for_inference` turns a trained top-down model into one that
computes the same heatmaps (up to float round-off) in less time:

- batch norms are folded into the convolution that feeds them, so each
  pair becomes one convolution (weights and bias rescaled once);
- the weights can be put in channels-last memory order, which oneDNN's CPU
  convolutions and the token flattening of the transformer necks prefer;
- ``torch.compile`` can be applied to the backbone, neck and head.

Fused scaled-dot-product attention needs no step: the package's attention
modules always use it. :func:`original_computation` undoes that for the
duration of a ``with`` block (attention weights materialised as the official
implementations do) so the benchmark can time both on the same weights.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..errors import ConfigError
# Re-exported: original_computation swaps it in for the fused kernel.
from ..models.utils.transformer import explicit_attention  # noqa: F401

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def model_input_size(model: nn.Module, cfg=None) -> Tuple[int, int]:
    """The ``(H, W)`` crop size a top-down model was configured for.

    Read from the head's codec (``model.head.decoder.input_size``, stored
    as ``(W, H)`` in MMPose) or else from ``cfg.codec``.

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
    """Fold every eval-mode batch norm that directly follows a convolution.

    Pairs are found by running ``example`` through the model once and
    watching which module consumes which module's output, so the order of
    definition does not matter and transposed convolutions are included. A
    pair is folded only when it is unambiguous: the convolution and the norm
    each run once, and the convolution's output goes to no other module.
    The folded norm becomes ``nn.Identity``. Exact up to float round-off.
    Uses of the output outside modules (e.g. ``bn(conv(x)) + conv(x)`` done
    with one stored tensor) cannot be seen: a model doing that must not be
    folded (the benchmark's comparison with the original would show it).

    Args:
        model (nn.Module): A model in eval mode, changed in place.
        example (Tensor): One input batch, as ``model(example, None,
            mode='tensor')`` takes it.

    Returns:
        int: Number of batch norms folded.

    Raises:
        ValueError: The model is in training mode (its norms would keep
            changing; there is nothing fixed to fold).
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
        if isinstance(m, _CONVS)
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
        if len(users) != 1 or not isinstance(users[0], _BatchNorm):
            continue
        norm = users[0]
        if (calls.get(conv) == 1 and calls.get(norm) == 1
                and norm.running_mean is not None):
            pairs.append((conv, norm))
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
    weight = conv.weight
    if transposed:
        # (in, out / groups, kh, kw): torch scales axis 1 as the output
        # channels, so the groups' blocks of them are laid out along it.
        weight = weight.unflatten(0, (conv.groups,
                                      -1)).transpose(0, 1).flatten(1, 2)
    weight, conv.bias = fuse_conv_bn_weights(
        weight,
        conv.bias,
        norm.running_mean,
        norm.running_var,
        norm.eps,
        norm.weight,
        norm.bias,
        transpose=transposed)
    if transposed:
        weight = nn.Parameter(
            weight.unflatten(1, (conv.groups, -1)).transpose(0,
                                                             1).flatten(0, 1))
    conv.weight = weight


def prepare_for_inference(model: nn.Module,
                          input_size: Optional[Sequence[int]] = None,
                          fold_bn: bool = True,
                          channels_last: bool = True,
                          compile: bool = False) -> nn.Module:
    """Make a top-down model compute its heatmaps faster, in place.

    Puts the model in eval mode: it is for inference only afterwards
    (folded norms cannot be trained, and a checkpoint saved from it will not
    load into an unfolded model). Load weights first.

    Args:
        model (nn.Module): A ``TopdownPoseEstimator``-like model whose
            ``model(x, None, mode='tensor')`` gives heatmaps.
        input_size (tuple, optional): ``(H, W)`` of the crops, used for the
            one forward pass that finds conv/norm pairs. Defaults to the
            head codec's input size.
        fold_bn (bool): Fold batch norms into convolutions.
        channels_last (bool): Put 4-D weights in channels-last order.
        compile (bool): ``torch.compile`` backbone, neck and head forward
            (the first calls then take minutes to compile on a CPU).

    Returns:
        nn.Module: ``model`` itself.
    """
    model.eval()
    if fold_bn:
        height, width = input_size or model_input_size(model)
        param = next(model.parameters())
        example = torch.zeros(
            1, 3, height, width, dtype=param.dtype, device=param.device)
        fold_batch_norms(model, example)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        for name in ('backbone', 'neck'):
            part = getattr(model, name, None)
            if part is not None:
                part.compile()
        head = getattr(model, 'head', None)
        if head is not None:
            # The estimator calls head.forward directly, not head(...).
            head.forward = torch.compile(head.forward)
    return model


@contextmanager
def original_computation() -> Iterator[None]:
    """Run attention unfused inside the block: the baseline of the speed
    benchmark.

    Every call of ``F.scaled_dot_product_attention`` (this package's
    attention modules and timm's) is replaced by :func:`explicit_attention`
    while the block runs, in every thread; it is restored afterwards even
    on error. Together with a model whose batch norms are not folded this
    is the computation of the official implementations.
    """
    fused = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = explicit_attention
    try:
        yield
    finally:
        F.scaled_dot_product_attention = fused

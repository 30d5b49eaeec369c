"""Suite ``train-step``: one training step against the original computation.

For one top-down model (TransPose, SSpose fine-tuning, SHaRPose) on the same
weights: crops/s, peak memory and costliest operations of the package's step
(the config's loss and optimiser wrapper, recipe's dropout on, as
``tools/train.py`` runs it) and of the same step computed as the original
code does (attention unfused:
:func:`~sspose_mm.apis.fast_inference.original_computation`), after checking
that both give the same loss and gradients (dropout off: random masks cannot
be compared); see README.md, "Training step".
"""
import argparse
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

import numpy as np
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.structures import InstanceData, PixelData
from mmpose.structures import PoseDataSample
from timm.layers import DropPath
from torch import Tensor, nn
from torch.profiler import ProfilerActivity, profile

from ..apis.fast_inference import original_computation
from ..errors import ConfigError
from ..models.utils import MultiheadSelfAttention
from .core import (BENCHMARKS, Report, interleaved_times, load_model,
                   peak_memory_added, random_crops, training_step)

ORIGINAL = 'original computation'
PACKAGE = 'this package'
# The two computations differ by float32 round-off only (attention summed in
# another order, through ~20 layers and training-mode batch norms, whose
# backward amplifies it where a gradient is small, more so in small batches).
# Measured at 256x192, of a tensor's gradient norm: 5e-5 (R-A3, batch 4),
# 1.3e-6 (SHaRPose-B, batch 2), 2.6e-4 (H-S, SSpose-B, batch 2). A real
# difference (a wrong scale, mask or term) changes a gradient by a sizeable
# part of itself: an attention off by 1% fails (test_benchmark_train_step).
RELATIVE_TOLERANCE = 1e-3
# Gradients below this share of the largest gradient norm are compared with
# that floor (one zero in exact arithmetic, e.g. of a bias before a batch
# norm, is round-off on both sides).
GRADIENT_FLOOR = 1e-3
TOP_OPERATIONS = 6


def training_batch(model: nn.Module,
                   batch: int,
                   size: Tuple[int, int],
                   seed: int = 0) -> Tuple[Tensor, List[PoseDataSample]]:
    """Random crops ``(batch, 3, H, W)`` and their data samples, as
    ``GenerateTarget`` and ``PackPoseInputs`` give them: one person each,
    one random keypoint per head channel (a fifth invisible), encoded by the
    head's codec."""
    codec = model.head.decoder
    num_keypoints = model.head.out_channels
    height, width = size
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(batch):
        keypoints = rng.uniform((0, 0), (width, height), (1, num_keypoints, 2))
        visible = (rng.uniform(size=(1, num_keypoints))
                   > 0.2).astype(np.float32)
        encoded = codec.encode(keypoints.astype(np.float32), visible)
        sample = PoseDataSample(
            metainfo=dict(
                input_size=(width, height),
                input_center=np.array([width / 2, height / 2], np.float32),
                input_scale=np.array([width, height], np.float32)))
        sample.gt_fields = PixelData(
            heatmaps=torch.from_numpy(encoded['heatmaps']))
        sample.gt_instance_labels = InstanceData(
            keypoint_weights=torch.from_numpy(encoded['keypoint_weights']))
        sample.gt_instances = InstanceData(
            keypoints=keypoints.astype(np.float32),
            keypoints_visible=visible,
            bboxes=np.array([[0, 0, width, height]], np.float32),
            areas=np.array([width * height], np.float32))
        samples.append(sample)
    return random_crops(batch, size, model, seed), samples


def step_loss(model: nn.Module, inputs: Tensor,
              samples: List[PoseDataSample]) -> Tensor:
    """The summed loss of one forward pass, as the runner's ``train_step``."""
    loss, _ = model.parse_losses(model(inputs, samples, mode='loss'))
    return loss


@contextmanager
def without_randomness(model: nn.Module) -> Iterator[None]:
    """Dropout, drop path and attention dropout off inside the block, batch
    norms still in training mode."""
    kinds = (nn.Dropout, DropPath, MultiheadSelfAttention)
    noisy = [m for m in model.modules() if isinstance(m, kinds) and m.training]
    for module in noisy:
        module.training = False
    try:
        yield
    finally:
        for module in noisy:
            module.training = True


def loss_and_gradients(model: nn.Module, inputs: Tensor,
                       samples: List[PoseDataSample]
                       ) -> Tuple[float, Dict[str, Tensor]]:
    """Loss and each trained parameter's gradient, by name (none kept)."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    loss = step_loss(model, inputs, samples)
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return float(loss), {n: g for n, g in zip(params, grads) if g is not None}


def check_same_step(model: nn.Module, inputs: Tensor,
                    samples: List[PoseDataSample]) -> Tuple[float, float, str]:
    """Relative loss difference and worst gradient difference
    ``||g - g_ref|| / ||g_ref||`` (the norm at least :data:`GRADIENT_FLOOR`
    of the largest one) with its tensor, of the package's step vs the
    original, randomness off.

    Raises:
        RuntimeError: The two train different parameters, or a difference
            exceeds :data:`RELATIVE_TOLERANCE`.
    """
    with without_randomness(model):
        loss, gradients = loss_and_gradients(model, inputs, samples)
        with original_computation():
            reference_loss, reference = loss_and_gradients(
                model, inputs, samples)
    if gradients.keys() != reference.keys():
        raise RuntimeError(
            'the two computations train different parameters: ' +
            ', '.join(sorted(gradients.keys() ^ reference.keys())[:5]))
    norms = {name: float(g.norm()) for name, g in reference.items()}
    floor = GRADIENT_FLOOR * max(norms.values(), default=0.)
    gradient, where = 0., ''
    for name, grad in gradients.items():
        relative = float(
            (grad - reference[name]).norm()) / max(norms[name], floor, 1e-30)
        if relative >= gradient:
            gradient, where = relative, name
    loss_difference = abs(loss - reference_loss) / max(
        abs(reference_loss), 1e-30)
    if max(loss_difference, gradient) > RELATIVE_TOLERANCE:
        raise RuntimeError(
            f'the training step does not reproduce the original '
            f'computation: loss {loss:.6g} vs {reference_loss:.6g}, '
            f'gradient of {where} differs by {gradient:.2e} of its norm '
            f'(tolerance {RELATIVE_TOLERANCE:g}).')
    return loss_difference, gradient, where


def top_operations(step: Callable[[], None]) -> List[Tuple[str, float]]:
    """The :data:`TOP_OPERATIONS` operations of one ``step()`` with the
    most self CPU time, and their share of the total."""
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        step()
    events = [e for e in profiler.key_averages() if e.self_cpu_time_total]
    total = sum(e.self_cpu_time_total for e in events) or 1.
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return [(e.key, e.self_cpu_time_total / total)
            for e in events[:TOP_OPERATIONS]]


@BENCHMARKS.register_module('train-step')
def bench_train_step(args: argparse.Namespace, report: Report) -> None:
    """crops/s and peak memory of a training step (forward, loss, backward,
    update) vs the original computation; equal losses and gradients."""
    model, size = load_model(args)
    cfg = model.cfg
    codec_size = tuple(model.head.decoder.input_size[::-1])
    if size != codec_size:
        raise ConfigError(
            f'train-step runs at the input size of the config\'s codec '
            f'({codec_size[0]}x{codec_size[1]}: its targets are made for it), '
            f'not --input {size[0]}x{size[1]}.')
    # What the hooks tell the model at the last epoch (SHaRPose's
    # train_epoch): every loss of the recipe on, no instance gated.
    for module in model.modules():
        if hasattr(module, 'train_epoch'):
            module.train_epoch = cfg.get('train_cfg', {}).get('max_epochs', 1)
    model.train()
    inputs, samples = training_batch(model, args.batch, size)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    package_loss = partial(step_loss, model, inputs, samples)
    # The backward follows the graph of the original computation.
    original_loss = original_computation()(package_loss)
    calls = {
        what: training_step(model, loss, optim_wrapper)
        for what, loss in ((ORIGINAL, original_loss), (PACKAGE, package_loss))
    }
    name = Path(args.config).stem
    recipe_batch = cfg.get('train_dataloader', {}).get('batch_size')
    report.section(
        f'train-step: {name}, batch {args.batch} (recipe: {recipe_batch} '
        f'per GPU), {size[0]}x{size[1]}, {torch.get_num_threads()} threads')
    peaks = peak_memory_added(calls)  # first: nothing computed yet
    loss_difference, gradient, where = check_same_step(model, inputs, samples)
    seconds = interleaved_times(
        calls, warmup=1, repeat=args.repeat, label='train-step')
    for what in calls:
        note = ('attention unfused, weights materialised' if what == ORIGINAL
                else f'{seconds[ORIGINAL] / seconds[what]:.2f}x original')
        report.row(what, args.batch / seconds[what], 'crops/s', note)
    report.row('speed-up, package / original',
               seconds[ORIGINAL] / seconds[PACKAGE], 'x',
               'forward, loss, backward, optimiser update')
    for what in calls:
        report.row(
            f'peak memory, {what}', peaks[what], 'GiB',
            'one step incl. optimiser state, added to the process '
            'with the model built; one thread')
    report.row('loss, |package - original|', loss_difference, 'of the loss',
               f'tolerance {RELATIVE_TOLERANCE:g}; dropout off')
    report.row('gradients, worst |package - original|', gradient,
               'of the norm', f'{where}; tolerance {RELATIVE_TOLERANCE:g}')
    for what, call in calls.items():
        for operation, share in top_operations(call):
            report.row(f'profile, {what}: {operation}', 100 * share,
                       '% of self CPU time')

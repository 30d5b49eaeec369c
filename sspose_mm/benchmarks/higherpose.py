"""``higherpose-memory``: what the structure-aware transformer costs on CPU.

HigherPose against the same network without its transformer modules
(MMPose's HRNet-W32 + the same HigherHRNet head), at 256 and 512 input:
inference throughput, FLOPs, and the peak memory of one inference and one
training step. The local transformer attends over all ``(H/4) * (W/4)``
positions (16384 at 512); its fused attention never holds the ``N x N``
weights, whose size the report gives for comparison.
"""
import argparse
import copy
import time
from functools import partial
from typing import Tuple

import torch
from mmengine.config import Config

from .core import (BENCHMARKS, GIB, Report, build_model, count_flops,
                   inference, peak_memory_added, random_crops, time_per_call,
                   training_step)

DEFAULT_CONFIG = ('configs/higherpose/'
                  'ae_higherpose-w32_1xb12-300e_coco-512x512.py')
TRANSFORMER_ARGS = ('num_layers', 'global_channels', 'num_heads',
                    'feedforward_channels', 'dropout', 'attn_drop',
                    'pos_embedding', 'input_size')


def build_pair(config: str) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """HigherPose from ``config`` and the same model with MMPose's plain
    HRNet as backbone (no global branch, fusion or transformers)."""
    cfg = Config.fromfile(config)
    baseline = copy.deepcopy(cfg)
    baseline.model.backbone.type = 'HRNet'
    for key in TRANSFORMER_ARGS:
        baseline.model.backbone.pop(key, None)
    return build_model(cfg), build_model(baseline)


def stand_in_loss(model: torch.nn.Module,
                  images: torch.Tensor) -> torch.Tensor:
    """The sum of the outputs: a stand-in for the losses, which are cheap
    next to the network."""
    heatmaps, tags = model(images, None, mode='tensor')
    return heatmaps.sum() + tags.sum()


@BENCHMARKS.register_module('higherpose-memory')
def bench(args: argparse.Namespace, report: Report) -> None:
    """HigherPose vs the same network without transformers: throughput,
    FLOPs and peak memory of inference and training at 256 and 512 (CPU)."""
    torch.manual_seed(0)  # the random weights
    config = args.config or DEFAULT_CONFIG
    models = dict(
        zip(('HigherPose', 'without transformers'), build_pair(config)))
    sizes = [args.input] if args.input else [(256, 256), (512, 512)]
    inputs = {size: random_crops(args.batch, size) for size in sizes}
    # Memory first (see peak_memory_added): nothing computed yet.
    calls = {}
    for size, images in inputs.items():
        for name, model in models.items():
            calls[size, name, 'inference'] = inference(model, images)
            calls[size, name, 'training step'] = training_step(
                model, partial(stand_in_loss, model, images))
    peaks = peak_memory_added(calls)
    for size, images in inputs.items():
        height, width = size
        tokens = (height // 4) * (width // 4)
        report.section(f'{height}x{width}, batch {args.batch}, '
                       f'{args.threads} threads; {tokens} tokens at 1/4')
        for name, model in models.items():
            start = time.process_time()
            seconds = time_per_call(
                inference(model, images),
                repeat=args.repeat,
                label=f'{name} {height}')
            cpu_seconds = ((time.process_time() - start) / (args.repeat + 1) /
                           args.batch)
            report.row(f'{name}: inference', args.batch / seconds, 'img/s',
                       f'{seconds * 1000:.0f} ms per batch (wall)')
            # Unlike wall time, hardly depends on processes sharing the cores.
            report.row(f'{name}: inference CPU time', cpu_seconds, 's/img',
                       'all threads, mean of warm-up and timed calls')
            flops = count_flops(inference(model, images[:1]))
            report.row(f'{name}: FLOPs per image', flops / 1e9, 'GFLOP',
                       'matmuls, convolutions and attention')
            for what in ('inference', 'training step'):
                report.row(
                    f'{name}: peak memory, {what}', peaks[size, name, what],
                    'GiB', 'added to the process with the models built; '
                    'one thread')
        attention_bytes = 4 * 4 * tokens**2 * args.batch
        report.row('N x N weights of one local layer (not held)',
                   attention_bytes / GIB, 'GiB',
                   '4 heads, float32; what an unfused attention would add')

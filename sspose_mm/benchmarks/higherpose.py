"""``higherpose-memory``: what the structure-aware transformer costs on CPU.

HigherPose against the same network without its transformer modules
(MMPose's HRNet-W32 + the same HigherHRNet head), at 256 and 512 input:
inference throughput, FLOPs, and the peak memory of one inference and of one
training step (forward + backward). The local transformer attends over all
``(H/4) * (W/4)`` positions (16384 at 512); its fused attention never holds
the ``N x N`` weights, whose size the report gives for comparison.
"""
import argparse
import copy
import time
from typing import Callable, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpose.registry import MODELS

from .core import BENCHMARKS, Report, count_flops, peak_rss_of, time_per_call

DEFAULT_CONFIG = ('configs/higherpose/'
                  'ae_higherpose-w32_1xb12-300e_coco-512x512.py')
TRANSFORMER_ARGS = ('num_layers', 'global_channels', 'num_heads',
                    'feedforward_channels', 'dropout', 'attn_drop',
                    'pos_embedding', 'input_size')
GIB = 1024**3


def build_pair(config: str) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """HigherPose from ``config`` and the same model with MMPose's plain
    HRNet as backbone (no global branch, fusion or transformers)."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    cfg.model.backbone.init_cfg = None
    baseline = copy.deepcopy(cfg.model)
    baseline.backbone.type = 'HRNet'
    for key in TRANSFORMER_ARGS:
        baseline.backbone.pop(key, None)
    return MODELS.build(cfg.model), MODELS.build(baseline)


def training_step(model: torch.nn.Module,
                  images: torch.Tensor) -> Callable[[], None]:
    """Forward and backward of the network on ``images`` (the loss is a
    stand-in: the sum of the outputs; the real losses are cheap next to
    the network)."""

    def step() -> None:
        model.train()
        heatmaps, tags = model(images, None, mode='tensor')
        (heatmaps.sum() + tags.sum()).backward()

    return step


def inference(model: torch.nn.Module,
              images: torch.Tensor) -> Callable[[], None]:

    def run() -> None:
        model.eval()
        with torch.no_grad():
            model(images, None, mode='tensor')

    return run


@BENCHMARKS.register_module('higherpose-memory')
def bench(args: argparse.Namespace, report: Report) -> None:
    """HigherPose vs the same network without transformers: throughput,
    FLOPs and peak memory of inference and training at 256 and 512 (CPU)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = args.config or DEFAULT_CONFIG
    models = dict(
        zip(('HigherPose', 'without transformers'), build_pair(config)))
    sizes = [args.input] if args.input else [(256, 256), (512, 512)]
    inputs = {size: torch.randn(args.batch, 3, *size) for size in sizes}
    # Memory first: each measurement runs in a forked child, which reuses
    # heap pages the parent has freed but kept, so the parent must not have
    # computed anything yet.
    peaks = {}
    for size, images in inputs.items():
        for name, model in models.items():
            for what, step in (('inference', inference), ('training step',
                                                          training_step)):
                peaks[size, name, what] = (
                    peak_rss_of(step(model, images)) -
                    peak_rss_of(lambda: None))
    for (height, width), images in inputs.items():
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
            # CPU time hardly depends on other processes sharing the cores,
            # wall time does.
            report.row(f'{name}: inference CPU time', cpu_seconds, 's/img',
                       'all threads, mean of warm-up and timed calls')
            single = inference(model, images[:1])
            flops = count_flops(single)
            report.row(f'{name}: FLOPs per image', flops / 1e9, 'GFLOP',
                       'matmuls, convolutions and attention')
            for what in ('inference', 'training step'):
                report.row(
                    f'{name}: peak memory, {what}',
                    peaks[(height, width), name, what] / GIB, 'GiB',
                    'added to the process with the models built; '
                    'one thread')
        attention_bytes = 4 * 4 * tokens**2 * args.batch
        report.row('N x N weights of one local layer (not held)',
                   attention_bytes / GIB, 'GiB',
                   '4 heads, float32; what an unfused attention would add')

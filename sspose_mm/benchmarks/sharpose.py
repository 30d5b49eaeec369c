"""``sharpose-sparse``: what SHaRPose's gate and sparse fine pass save.

For a SHaRPose config (default: base 256x192, alpha 0.4), per instance: MACs
and CPU throughput (backbone + head, no flip or decoding, as the official
``benchmark.py``) of the gated model with 0%, 50% and 100% of the instances
refined (forced by the quality threshold), against the same ViT run densely
on [K keypoint tokens, all N1 fine patches] (no coarse pass, no
sparsification; ViTPose-style). Ratios above 1 mean SHaRPose is cheaper.
"""
import argparse
import math
from typing import Callable, Dict, Tuple

import torch
from torch import Tensor, nn

from .core import (BENCHMARKS, Report, build_model, count_flops,
                   interleaved_times, random_crops)

DEFAULT_CONFIG = ('configs/sharpose/'
                  'td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192.py')
DENSE = 'dense ViT, full resolution'
REFINE_RATES = (0., 0.5, 1.)


def dense_forward(model: nn.Module, inputs: Tensor) -> Tensor:
    """Heatmaps of the model's ViT run densely on all fine patches."""
    backbone = model.backbone
    keypoint_tokens = backbone.keypoint_tokens.expand(len(inputs), -1, -1)
    patches = backbone.patch_embed(inputs) + backbone.pos_embed_list[1]
    tokens = torch.cat([keypoint_tokens, patches], dim=1)
    for block in backbone.blocks:
        tokens, _ = block(tokens)
    keypoints = backbone.norm(tokens[:, :backbone.num_keypoints])
    return model.head.tokens_to_heatmaps(keypoints)


def gated_forward(model: nn.Module, inputs: Tensor,
                  refine_rate: float) -> Tuple[Callable[[], Tensor], float]:
    """The gated model (standalone-test mode) with the quality threshold set
    to refine ``refine_rate`` of the instances (as near as the batch
    allows), and the share it then refines."""
    backbone = model.backbone
    backbone.train_epoch = None
    with torch.no_grad():
        quality = backbone(inputs).quality.sort().values
    bounds = torch.cat([
        quality.new_tensor([-math.inf]), quality,
        quality.new_tensor([math.inf])
    ])
    refined = round(refine_rate * len(quality))
    # Between the refined-th and the next quality (-inf: none, inf: all).
    threshold = float(bounds[refined] + bounds[refined + 1]) / 2

    def run() -> Tensor:
        backbone.qp_threshold = threshold
        return model.head(backbone(inputs))

    run()
    return run, float(backbone(inputs).refine_mask.float().mean())


def compared_runs(model: nn.Module,
                  inputs: Tensor) -> Dict[str, Callable[[], Tensor]]:
    """The dense baseline and the gated model at each of
    :data:`REFINE_RATES`, keyed ``'SHaRPose, 50% refined'`` etc. by the
    share actually refined."""
    runs = {DENSE: lambda: dense_forward(model, inputs)}
    for rate in REFINE_RATES:
        with torch.no_grad():
            run, refined = gated_forward(model, inputs, rate)
        runs[f'SHaRPose, {refined:.0%} refined'] = run
    return runs


def macs_per_instance(runs: Dict[str, Callable[[], Tensor]],
                      batch: int) -> Dict[str, float]:
    """MACs of one instance for each run (:func:`~.core.count_flops` / 2)."""
    with torch.no_grad():
        return {w: count_flops(r) / 2 / batch for w, r in runs.items()}


@BENCHMARKS.register_module('sharpose-sparse')
def bench(args: argparse.Namespace, report: Report) -> None:
    """SHaRPose gated sparse model vs dense ViT: MACs and throughput at
    refine rates 0/50/100%."""
    config = args.config or DEFAULT_CONFIG
    model = build_model(config)
    backbone = model.backbone
    height, width = backbone.img_sizes[1]
    if args.input and tuple(args.input) != (height, width):
        # Position embeddings are per grid: other sizes would be resized.
        report.section(f'{config}: --input ignored, runs at {height}x{width}')
    inputs = random_crops(args.batch, (height, width))
    (h0, w0), (h1, w1) = backbone.grids
    report.section(
        f'{config}: {height}x{width}, alpha {backbone.alpha} '
        f'({backbone.num_selected} of {h0 * w0} coarse patches), batch '
        f'{args.batch}, {args.threads} threads')
    report.row(
        'sequence length coarse / fine', backbone.coarse_sequence_length,
        'tokens', f'fine pass {backbone.fine_sequence_length}, dense '
        f'{backbone.num_keypoints + h1 * w1}')

    runs = compared_runs(model, inputs)
    macs = macs_per_instance(runs, args.batch)
    with torch.no_grad():
        seconds = interleaved_times(
            runs, warmup=1, repeat=args.repeat, label='sharpose-sparse')
    for what in runs:
        report.row(
            what, macs[what] / 1e9, 'GMACs/inst',
            'matrix products and attention (torch flop counter / 2)'
            if what == DENSE else '')
        report.row(what, args.batch / seconds[what], 'inst/s')
        if what != DENSE:
            report.row(what + ': dense / sparse MACs',
                       macs[DENSE] / macs[what], 'x')
            report.row(what + ': sparse / dense throughput',
                       seconds[DENSE] / seconds[what], 'x')

"""Suite ``speed``: the fast inference path against the original computation.

crops/s of the original computation and of the fast path step by step, each
checked to give the original's heatmaps, timed in interleaved rounds with a
float32 matrix product whose rate each path's GFLOP/s is read against; see
docs/speed.md. Works for any top-down model whose ``model(x, None,
mode='tensor')`` returns heatmaps (a tensor or a tuple).
"""
import argparse
import copy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..apis.fast_inference import original_computation, prepare_for_inference
from .core import (BENCHMARKS, Report, count_flops, inference,
                   interleaved_times, load_model, random_crops)

# prepare_for_inference options; each step adds one change to the previous,
# so the report shows what every step buys (compile only with --compile).
STEPS = [
    ('fused attention', dict(fold_bn=False, channels_last=False)),
    ('+ BN folded', dict(fold_bn=True, channels_last=False)),
    ('+ channels-last', dict(fold_bn=True, channels_last=True)),
    ('+ torch.compile', dict(fold_bn=True, channels_last=True, compile=True)),
]
# Of the largest heatmap value: float32 round-off (fused attention, folded
# norms) through ~20 layers stays far below it, a real error (a wrong fold or
# mask) is of the order of the heatmaps.
RELATIVE_TOLERANCE = 1e-4


def max_difference(outputs: Any, reference: Any) -> float:
    """Largest |difference| of two ``mode='tensor'`` outputs (tensors or
    tuples), relative to the largest |reference|."""
    outputs, reference = ([o] if isinstance(o, Tensor) else list(o)
                          for o in (outputs, reference))
    scale = max(float(r.abs().max()) for r in reference) or 1.
    return max(
        float((o.float() - r.float()).abs().max())
        for o, r in zip(outputs, reference)) / scale


@BENCHMARKS.register_module('speed')
def bench_speed(args: argparse.Namespace, report: Report) -> None:
    """crops/s of the fast inference path vs the original computation (same
    weights), GFLOP/crop, share of the sgemm rate."""
    model, (height, width) = load_model(args)
    inputs = random_crops(args.batch, (height, width), model)
    name = Path(args.config).stem
    report.section(f'speed: {name}, batch {args.batch}, {height}x{width}, '
                   f'{torch.get_num_threads()} threads')

    forward = inference(model, inputs)
    with original_computation():
        flops = count_flops(inference(model, inputs[:1]))
        reference = forward()
    gflop = flops / 1e9
    report.row(
        'work per crop', gflop, 'GFLOP',
        'torch.utils.flop_counter: conv/matmul/attention, '
        '1 multiply-add = 2 FLOP')

    a, b = torch.randn(2, 2048, 2048)  # the sgemm rate: this CPU's best
    out = torch.empty(2048, 2048)
    calls = {
        'sgemm': lambda: torch.mm(a, b, out=out),
        'original computation': original_computation()(forward)
    }
    steps = STEPS[:3] if args.steps else STEPS[2:3]
    if getattr(args, 'compile', False):
        steps = steps + STEPS[3:]
    for label, options in steps:
        fast_model = prepare_for_inference(
            copy.deepcopy(model), (height, width), **options)
        calls[label] = inference(fast_model, inputs)

    seconds = interleaved_times(
        calls, warmup=1, repeat=args.repeat, label='speed')
    # After the timing, so that a compiled path compiles once.
    differences = {s: max_difference(calls[s](), reference) for s, _ in steps}
    sgemm_rate = 2 * 2048**3 / seconds.pop('sgemm') / 1e9
    report.row('sgemm 2048x2048 float32', sgemm_rate, 'GFLOP/s',
               'timed in the same rounds as the models')
    rates = {label: args.batch / time for label, time in seconds.items()}
    baseline = rates['original computation']
    for label, rate in rates.items():
        achieved = rate * gflop
        note = (f'{achieved:.0f} GFLOP/s = {100 * achieved / sgemm_rate:.0f}% '
                'of sgemm')
        if label == 'original computation':
            note += ', attention unfused, BN not folded'
        else:
            note = f'{rate / baseline:.2f}x original, {note}'
        if label in differences:
            note += f', max |diff| {differences[label]:.1e} of max |heatmap|'
        report.row(label, rate, 'crops/s', note)
    fast = rates[steps[-1][0]]
    report.row('speed-up, fast path / original', fast / baseline, 'x')
    report.row('fast path, share of sgemm rate',
               100 * fast * gflop / sgemm_rate, '%')
    worst = max(differences.values())
    report.row('heatmaps, max |fast - original|', worst, 'of max |heatmap|',
               f'tolerance {RELATIVE_TOLERANCE:g}')
    if worst > RELATIVE_TOLERANCE:
        raise RuntimeError(
            f'the fast path of {name} does not reproduce the original '
            f'heatmaps: max difference {worst:.2e} of the largest value '
            f'(tolerance {RELATIVE_TOLERANCE:g}).')

"""The ``higherpose-memory`` suite runs end to end (tiny input); nothing
here asserts a speed or a memory size."""
import argparse

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from sspose_mm.benchmarks.core import BENCHMARKS, Report, count_flops
from sspose_mm.benchmarks.higherpose import build_pair
from sspose_mm.models.utils import MultiheadSelfAttention
from conftest import REPO

QUICKSTART = str(REPO / 'configs/higherpose/'
                 'ae_higherpose-w32_2xb8-4e_synthetic-128x128.py')


def test_suite_reports_both_models_at_the_requested_size():
    args = argparse.Namespace(
        config=QUICKSTART,
        checkpoint=None,
        batch=1,
        threads=1,
        input=(64, 96),
        repeat=1)
    report = Report(live=False)
    threads = torch.get_num_threads()
    try:
        BENCHMARKS.get('higherpose-memory')(args, report)
    finally:
        torch.set_num_threads(threads)  # the suite sets its own
    section, = [s.title for s in report.sections]
    assert section.startswith('64x96, batch 1')
    for model in ('HigherPose', 'without transformers'):
        for what in ('inference', 'inference CPU time', 'FLOPs per image',
                     'peak memory, inference', 'peak memory, training step'):
            assert report.find(section, f'{model}: {what}').value > 0
    # 16x24 tokens at 1/4: 4 bytes x 4 heads x 384^2.
    weights = report.find(section, 'N x N weights of one local layer '
                          '(not held)').value * 1024**3
    assert weights == pytest.approx(4 * 4 * 384**2)


def test_baseline_is_the_same_network_without_the_transformer_part():
    higherpose, baseline = build_pair(QUICKSTART)
    assert type(baseline.backbone).__name__ == 'HRNet'
    names = {n for n, _ in baseline.named_parameters()}
    added = {n for n, _ in higherpose.named_parameters()} - names
    assert names < {n for n, _ in higherpose.named_parameters()}
    assert {n.split('.')[1]
            for n in added} == {
                'global_reduction', 'global_transformer', 'global_upsample',
                'fusion', 'local_transformer'
            }


def test_flops_include_the_attention_over_every_position():
    """The fused kernel's count equals that of the explicit computation
    (math backend: products the counter sees), and the attention products
    are 4 N^2 C per layer: global 8x8 tokens x 4 channels, local 16x16 x
    32 at 64x64."""
    higherpose, _ = build_pair(QUICKSTART)
    images = torch.randn(1, 3, 64, 64)
    higherpose.eval()

    def forward():
        with torch.no_grad():
            higherpose(images, None, mode='tensor')

    fused = count_flops(forward)
    with sdpa_kernel(SDPBackend.MATH):
        explicit = count_flops(forward)
    hooked = []
    handles = [
        m.register_forward_pre_hook(
            lambda m, args: hooked.append(args[0].shape))
        for m in higherpose.modules() if isinstance(m, MultiheadSelfAttention)
    ]
    forward()
    for handle in handles:
        handle.remove()
    layers = len(higherpose.backbone.local_transformer.layers)
    assert sorted(tuple(s) for s in hooked) == sorted([(1, 64, 4)] * layers +
                                                      [(1, 256, 32)] * layers)
    assert fused == explicit
    assert fused > layers * 4 * (64**2 * 4 + 256**2 * 32)

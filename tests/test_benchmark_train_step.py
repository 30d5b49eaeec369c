"""The ``train-step`` suite on the smallest TransPose (synthetic recipe,
96x72, batch 2), its check that both computations give the same loss and
gradients, and what the attention runs in training. Nothing here asserts a
speed."""
import argparse

import pytest
import torch
from mmengine.config import Config
from torch.profiler import ProfilerActivity, profile

from sspose_mm.apis import fast_inference
from sspose_mm.benchmarks.core import format_suite_list, load_model, run_suites
from sspose_mm.benchmarks.train_step import (ORIGINAL, PACKAGE,
                                             RELATIVE_TOLERANCE,
                                             check_same_step, training_batch)
from sspose_mm.errors import ConfigError
from sspose_mm.models.utils import MultiheadSelfAttention
from conftest import QUICKSTART_CONFIG


def suite_args(**changes) -> argparse.Namespace:
    args = dict(
        config=str(QUICKSTART_CONFIG),
        checkpoint=None,
        suite=['train-step'],
        batch=2,
        threads=1,
        input=None,
        repeat=1)
    args.update(changes)
    return argparse.Namespace(**args)


# slow: a dozen training steps (three in forked children), ~10 s.
@pytest.mark.slow
def test_train_step_suite_runs_and_both_computations_agree():
    report = run_suites(suite_args())
    (section, ) = report.sections
    assert section.title.startswith('train-step: td-hm_transpose-r-a3')
    recipe = Config.fromfile(QUICKSTART_CONFIG).train_dataloader.batch_size
    assert f'batch 2 (recipe: {recipe} per GPU)' in section.title
    rows = {row.what: row for row in section.rows}
    for what in (ORIGINAL, PACKAGE):
        assert rows[what].unit == 'crops/s' and rows[what].value > 0
        # A step of R-A3 at 96x72 allocates tens of MiB at least.
        assert rows[f'peak memory, {what}'].value > 0.01
        assert any(row.startswith(f'profile, {what}: aten::') for row in rows)
    assert rows['speed-up, package / original'].value > 0
    assert 0 <= rows['loss, |package - original|'].value <= RELATIVE_TOLERANCE
    assert 0 <= rows['gradients, worst |package - original|'].value <= (
        RELATIVE_TOLERANCE)
    assert 'train-step' in format_suite_list()


def test_the_check_sees_an_original_that_computes_otherwise(monkeypatch):
    """An original attention off by 1% must fail the check: the check is
    not blind to the attention it compares."""
    model, size = load_model(suite_args())
    model.train()
    inputs, samples = training_batch(model, 2, size)
    explicit = fast_inference.explicit_attention
    monkeypatch.setattr(fast_inference, 'explicit_attention',
                        lambda *a, **k: 1.01 * explicit(*a, **k))
    with pytest.raises(RuntimeError, match='does not reproduce the original'):
        check_same_step(model, inputs, samples)


def test_the_suite_refuses_another_input_size():
    with pytest.raises(ConfigError, match='input size of the config'):
        run_suites(suite_args(input=(64, 48)))


def attention_operations(dropout: float, need_weights: bool = False) -> set:
    """Names of the operations one training forward and backward of a
    MultiheadSelfAttention runs on the CPU."""
    attention = MultiheadSelfAttention(32, 4, attn_drop=dropout).train()
    tokens = torch.randn(2, 50, 32, requires_grad=True)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        out, weights = attention(tokens, need_weights=need_weights)
        out.sum().backward()
    assert (weights is not None) == need_weights
    return {event.key for event in profiler.key_averages()}


def test_training_attention_is_fused_both_ways_and_holds_no_weights():
    operations = attention_operations(dropout=0.)
    assert {
        'aten::_scaled_dot_product_flash_attention_for_cpu',
        'aten::_scaled_dot_product_flash_attention_for_cpu_backward'
    } <= operations
    # No softmax: the N x N weights are never formed unless asked for.
    assert not {'aten::softmax', 'aten::_softmax'} & operations
    assert 'aten::_softmax' in attention_operations(0., need_weights=True)


def test_attention_dropout_on_the_cpu_is_computed_explicitly():
    """PyTorch's fused CPU kernel takes no dropout; its math fallback adds
    a "safe softmax" (two more passes over the N x N weights). The
    explicit computation, the original one, runs instead."""
    operations = attention_operations(dropout=0.1)
    assert 'aten::_safe_softmax' not in operations
    assert 'aten::_scaled_dot_product_attention_math' not in operations
    assert {'aten::_softmax', 'aten::dropout'} <= operations

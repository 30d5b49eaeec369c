"""The benchmark framework (registry, report, timer, memory probe) and the
``speed`` suite end to end on a tiny run. Nothing here asserts a speed."""
import argparse
import json

import pytest
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from sspose_mm.benchmarks import core
from sspose_mm.benchmarks.core import (BENCHMARKS, Report, count_flops,
                                       format_suite_list, get_benchmark,
                                       load_model, peak_rss_of, run_suites,
                                       time_per_call)
from sspose_mm.benchmarks.speed import RELATIVE_TOLERANCE
from sspose_mm.errors import ConfigError
from conftest import QUICKSTART_CONFIG, run_tool


def test_time_per_call_is_the_median_after_warmup(monkeypatch):
    """A fake clock advanced by each call: 9 s warm-up, then 3, 1, 2 s."""
    durations = iter([9., 3., 1., 2.])
    clock = [0.]
    monkeypatch.setattr(core.time, 'perf_counter', lambda: clock[0])

    def call():
        clock[0] += next(durations)

    assert time_per_call(call, warmup=1, repeat=3) == 2.
    with pytest.raises(ValueError, match='repeat'):
        time_per_call(call, repeat=0)


def test_peak_rss_of_sees_an_allocation_and_passes_errors_on():
    baseline = peak_rss_of(lambda: None)
    size = 200 * 2**20
    # torch.ones writes every page, so all of it becomes resident.
    peak = peak_rss_of(lambda: torch.ones(size // 4))
    assert peak - baseline >= 0.9 * size
    with pytest.raises(RuntimeError, match='ZeroDivisionError'):
        peak_rss_of(lambda: 1 / 0)


def test_count_flops_counts_a_matmul_as_two_flops_per_multiply_add():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert count_flops(lambda: a @ b) == 2 * 8 * 16 * 4


def test_count_flops_sees_the_fused_cpu_attention():
    """4 N_q N_k C per head and image, as the explicit computation (math
    backend: two matrix products the counter sees), forward and backward."""
    q = torch.randn(2, 4, 100, 16, requires_grad=True)
    k = torch.randn(2, 4, 60, 16, requires_grad=True)

    def attend():
        return F.scaled_dot_product_attention(q, k, k)

    with sdpa_kernel(SDPBackend.MATH):
        explicit = count_flops(attend)
    assert count_flops(attend) == explicit == 4 * 2 * 4 * 100 * 60 * 16
    assert count_flops(lambda: attend().sum().backward()) > 3 * explicit


def test_report_rows_sections_and_json(tmp_path, capsys):
    report = Report()
    report.row('before any section', 1., 'x')
    report.section('second')
    report.row('rate', 12.5, 'crops/s', 'note')
    assert 'rate' in capsys.readouterr().out  # printed as it comes
    assert report.find('second', 'rate').value == 12.5
    with pytest.raises(KeyError):
        report.find('second', 'missing')
    report.dump_json(tmp_path / 'r.json')
    data = json.loads((tmp_path / 'r.json').read_text())
    assert [s['title'] for s in data['sections']] == ['results', 'second']
    assert data['sections'][1]['rows'][0] == dict(
        what='rate', value=12.5, unit='crops/s', note='note')
    assert data['machine']['torch_threads'] == torch.get_num_threads()
    assert 'crops/s' in report.format()


def test_a_suite_name_is_registered_once():

    @BENCHMARKS.register_module('test-only-suite')
    def first(args, report):
        pass

    try:
        with pytest.raises(KeyError, match='already registered'):

            @BENCHMARKS.register_module('test-only-suite')
            def second(args, report):
                pass
    finally:
        del BENCHMARKS.module_dict['test-only-suite']


@pytest.mark.slow
def test_speed_suite_end_to_end(tmp_path):
    out = tmp_path / 'speed.json'
    result = run_tool([
        'tools/benchmark.py',
        str(QUICKSTART_CONFIG), '--batch', '2', '--repeat', '1', '--input',
        '64x48', '--threads', '1', '--json',
        str(out)
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    (section, ) = json.loads(out.read_text())['sections']
    assert section['title'].startswith('speed: td-hm_transpose-r-a3')
    rows = {row['what']: row for row in section['rows']}
    for what in ('original computation', 'fused attention', '+ BN folded',
                 '+ channels-last'):
        assert rows[what]['unit'] == 'crops/s' and rows[what]['value'] > 0
    assert rows['work per crop']['value'] > 0
    assert 0 <= rows['heatmaps, max |fast - original|']['value'] <= (
        RELATIVE_TOLERANCE)
    assert 'speed-up, fast path / original' in result.stdout


def test_bad_requests_stop_before_anything_runs():
    """tools/benchmark.py's checks: run_cli turns these ConfigErrors into
    one line, exit 2."""
    with pytest.raises(
            ConfigError,
            match='unknown benchmark suite "no-such-suite"; '
            'known: .*speed'):
        get_benchmark('no-such-suite')
    with pytest.raises(ConfigError, match='config "missing.py" does not'):
        load_model(
            argparse.Namespace(
                config='missing.py', checkpoint=None, input=None))
    args = argparse.Namespace(suite=['speed'], batch=0, threads=1, repeat=1)
    with pytest.raises(ConfigError, match='--batch must be at least 1'):
        run_suites(args)


def test_suite_list():
    listed = format_suite_list()
    # Each suite's help is its docstring's first paragraph, on one line.
    assert ('speed                    crops/s of the fast inference path vs '
            'the original computation (same weights)') in listed
    assert 'sspose-pretrain' in listed and 'higherpose-memory' in listed

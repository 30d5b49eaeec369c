"""What every benchmark suite shares: a registry, a report, timers.

A suite is a function ``bench(args, report)`` registered in
:data:`BENCHMARKS`, its docstring's first paragraph its ``--list`` help;
``args`` are ``tools/benchmark.py``'s (``input``: ``(H, W)`` or None).
Timings are medians after warm-up calls, so one-off work (lazy init,
``torch.compile``) and a call slowed by another process do not count.
"""
import argparse
import contextlib
import ctypes
import json
import os
import pickle
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import Registry, init_default_scope
from mmpose.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from tqdm import tqdm

from ..errors import ConfigError

GIB = 1024**3

BENCHMARKS = Registry('benchmark suite')


def get_benchmark(name: str) -> Callable[[argparse.Namespace, 'Report'], None]:
    """The suite ``name``, or a ConfigError listing the known ones."""
    # module_dict, not BENCHMARKS.get: get imports dotted names as modules.
    if name not in BENCHMARKS.module_dict:
        raise ConfigError(f'unknown benchmark suite "{name}"; known: '
                          f'{", ".join(sorted(BENCHMARKS.module_dict))}.')
    return BENCHMARKS.module_dict[name]


def format_suite_list() -> str:
    """``tools/benchmark.py --list``: one line per suite, name and help."""
    return '\n'.join(f'{name:<24s} ' +
                     ' '.join(suite.__doc__.split('\n\n')[0].split())
                     for name, suite in sorted(BENCHMARKS.module_dict.items()))


def run_suites(args: argparse.Namespace) -> 'Report':
    """Run the suites ``args.suite`` on ``args.threads`` threads into a new
    report, printed as it comes.

    Raises:
        ConfigError: An unknown suite, or a count below 1 (before any run).
    """
    suites = [get_benchmark(name) for name in args.suite]
    for name in ('batch', 'threads', 'repeat'):
        value = getattr(args, name)
        if value < 1:
            raise ConfigError(f'--{name} must be at least 1, got {value}.')
    torch.set_num_threads(args.threads)
    report = Report()
    print(report.format())  # no sections yet: the machine line
    for suite in suites:
        suite(args, report)
    return report


@dataclass
class Row:
    what: str
    value: float
    unit: str
    note: str = ''


@dataclass
class Section:
    title: str
    rows: List[Row] = field(default_factory=list)


class Report:
    """The result tables of a run, printed as they come when ``live``."""

    def __init__(self, live: bool = True) -> None:
        self.sections: List[Section] = []
        self.machine = describe_machine()
        self.live = live

    def section(self, title: str) -> None:
        self.sections.append(Section(title))
        self._print(f'\n== {title}')

    def row(self, what: str, value: float, unit: str, note: str = '') -> None:
        if not self.sections:
            self.section('results')
        row = Row(what, float(value), unit, note)
        self.sections[-1].rows.append(row)
        self._print(_format_row(row))

    def find(self, section: str, what: str) -> Row:
        """The row ``what`` of section ``section``, or a KeyError."""
        for row in (r for s in self.sections if s.title == section
                    for r in s.rows):
            if row.what == what:
                return row
        raise KeyError(f'no row "{what}" in section "{section}"')

    def dump_json(self, path: str) -> None:
        """The ``--json`` record: the machine and the sections."""
        record = dict(machine=self.machine, sections=self.sections)
        with open(path, 'w') as f:
            json.dump(record, f, indent=2, default=asdict)

    def format(self) -> str:
        machine = ', '.join(f'{k} {v}' for k, v in self.machine.items())
        lines = [f'machine: {machine}']
        for sec in self.sections:
            lines.append(f'\n== {sec.title}')
            lines.extend(_format_row(row) for row in sec.rows)
        return '\n'.join(lines)

    def _print(self, text: str) -> None:
        if self.live:
            print(text, flush=True)


def _format_row(row: Row) -> str:
    value = f'{row.value:.4g}' if abs(row.value) < 1e4 else f'{row.value:.0f}'
    note = f'  ({row.note})' if row.note else ''
    return f'  {row.what:<40s} {value:>10s} {row.unit}{note}'


def parse_size(text: str) -> Tuple[int, int]:
    """``'256x192'`` -> ``(256, 192)`` (height, width), for ``--input``."""
    try:
        height, width = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'--input must be HxW, e.g. 256x192, got "{text}"') from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f'--input {text}: sizes must be >0')
    return height, width


def describe_machine() -> Dict[str, Any]:
    """What a timing depends on: CPU, threads, library versions, load."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open('/proc/cpuinfo') as f:
        cpu = next((line.split(':', 1)[1].strip()
                    for line in f if line.startswith('model name')), cpu)
    machine = dict(
        cpu=cpu,
        cores=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        python=platform.python_version())
    if hasattr(os, 'getloadavg'):
        machine['load_1min_at_start'] = round(os.getloadavg()[0], 2)
    if torch.cuda.is_available():
        machine['gpu'] = torch.cuda.get_device_name(0)
    return machine


def time_per_call(fn: Callable[[], Any],
                  warmup: int = 1,
                  repeat: int = 3,
                  label: str = 'timing') -> float:
    """Median wall-clock seconds of ``fn()`` after ``warmup`` calls."""
    return interleaved_times({label: fn}, warmup, repeat, label)[label]


def interleaved_medians(calls: Dict[str, Callable[[], Dict[str, float]]],
                        warmup: int = 1,
                        repeat: int = 3,
                        label: str = 'timing') -> Dict[str, Dict[str, float]]:
    """For each of ``calls``, the median of each time (seconds by name) it
    returns, over ``repeat`` rounds after ``warmup`` ones. Each round calls
    every function once, so that a change of load (processes sharing the
    cores) affects all alike and their ratios hold. A progress bar shows on
    a terminal's stderr.

    Raises:
        ValueError: ``repeat`` is below 1 or ``warmup`` below 0.
    """
    if repeat < 1 or warmup < 0:
        raise ValueError(f'interleaved_times needs repeat >= 1 and warmup '
                         f'>= 0, got repeat={repeat}, warmup={warmup}')
    times: Dict[str, Dict[str, List[float]]] = {name: {} for name in calls}
    with tqdm(
            total=(warmup + repeat) * len(calls),
            desc=label,
            unit='call',
            leave=False,
            file=sys.stderr,
            disable=None) as bar:
        for round_index in range(warmup + repeat):
            for name, call in calls.items():
                bar.set_postfix_str(name)
                measured = call()
                if round_index >= warmup:
                    for key, seconds in measured.items():
                        times[name].setdefault(key, []).append(seconds)
                bar.update()
    median = statistics.median
    return {n: {k: median(v) for k, v in t.items()} for n, t in times.items()}


def interleaved_times(calls: Dict[str, Callable[[], Any]],
                      warmup: int = 1,
                      repeat: int = 3,
                      label: str = 'timing') -> Dict[str, float]:
    """Median wall-clock seconds of each of ``calls``, timed in interleaved
    rounds (:func:`interleaved_medians`; CUDA synchronised around each)."""
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (
        lambda: None)

    def timed(fn: Callable[[], Any]) -> Dict[str, float]:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return {'seconds': time.perf_counter() - start}

    timed_calls = {name: partial(timed, fn) for name, fn in calls.items()}
    medians = interleaved_medians(timed_calls, warmup, repeat, label)
    return {name: median['seconds'] for name, median in medians.items()}


def peak_rss_of(fn: Callable[[], Any]) -> int:
    """Peak resident bytes of a forked child running ``fn()`` on one thread
    (``ru_maxrss`` never goes down: a child keeps measurements apart). It
    includes what this process has written (model, tensors): subtract
    ``peak_rss_of(lambda: None)`` for what ``fn`` adds.

    Raises:
        RuntimeError: ``fn`` raised in the child (its message is passed on)
            or the child died.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report the error, if any, then leave at once
        os.close(read_end)
        message = b''
        try:
            # GNU OpenMP's thread pool does not survive fork(): a parallel
            # region would wait forever for the parent's threads.
            torch.set_num_threads(1)
            # Freed heap back to the system and the peak restarted (Linux),
            # so that fn counts all it needs, not pages freed earlier.
            with contextlib.suppress(AttributeError, OSError):
                ctypes.CDLL(None).malloc_trim(0)
                with open('/proc/self/clear_refs', 'w') as f:
                    f.write('5')
            fn()
        except BaseException as error:  # noqa: BLE001 - passed to parent
            message = pickle.dumps(f'{type(error).__name__}: {error}')
        with os.fdopen(write_end, 'wb') as pipe:
            pipe.write(message)
        os._exit(1 if message else 0)
    os.close(write_end)
    with os.fdopen(read_end, 'rb') as pipe:
        message = pipe.read()
    _, status, usage = os.wait4(pid, 0)
    if message:
        raise RuntimeError(f'peak_rss_of: the measured function failed: '
                           f'{pickle.loads(message)}')
    if status != 0:
        raise RuntimeError(f'peak_rss_of: the child process died '
                           f'(wait status {status}).')
    # Linux reports kilobytes, macOS bytes.
    return usage.ru_maxrss * (1 if sys.platform == 'darwin' else 1024)


def peak_memory_added(calls: Dict[str, Callable[[], Any]]) -> Dict[str, float]:
    """GiB that each call adds at its peak to this process as it is.
    Measure before computing anything: a forked child reuses heap pages the
    parent has freed but kept."""
    empty = peak_rss_of(lambda: None)
    return {n: (peak_rss_of(c) - empty) / GIB for n, c in calls.items()}


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of ``fn()`` by ``torch.utils.flop_counter``.

    One multiply-accumulate = 2 FLOPs; only matrix products, convolutions
    and attention count, not norms, activations or additions (so about 2x
    the "GMACs" of papers and the TransPose README). PyTorch's counter knows
    CUDA's fused attention but not the CPU kernel the package runs; its
    formula (``4 N_q N_k C`` per head and image) is added for it.
    """
    from torch.utils.flop_counter import (FlopCounterMode,
                                          sdpa_backward_flop_count,
                                          sdpa_flop_count)
    aten = torch.ops.aten
    # The CPU kernels' arguments start like the CUDA ones': (grad_out,)
    # query, key, value, then options the formula does not need.
    cpu_attention = {
        aten._scaled_dot_product_flash_attention_for_cpu:
        lambda q, k, v, *_, **__: sdpa_flop_count(q, k, v),
        aten._scaled_dot_product_flash_attention_for_cpu_backward:
        lambda grad, q, k, v, *_, **__: sdpa_backward_flop_count(
            grad, q, k, v),
    }
    with FlopCounterMode(
            display=False, custom_mapping=cpu_attention) as counter:
        fn()
    return counter.get_total_flops()


def load_model(args: argparse.Namespace) -> Tuple[nn.Module, Tuple[int, int]]:
    """The eval-mode model of ``args.config`` and the ``(H, W)`` to run it at
    (``args.input`` or the codec's). Without ``args.checkpoint`` (or with
    ``"none"``) weights and batch-norm statistics are random
    (:func:`randomise_norm_statistics`), so that checks comparing two
    computations are not blind to the norms.

    Raises:
        ConfigError: No config, or a missing config/checkpoint file.
        CheckpointError: A checkpoint that does not fit the config's model.
    """
    from ..apis.fast_inference import model_input_size
    from ..apis.loading import check_model_files, init_model, is_untrained
    if args.config is None:
        raise ConfigError('this benchmark suite needs a model CONFIG.')
    checkpoint = getattr(args, 'checkpoint', None)
    check_model_files(args.config, checkpoint)
    model = init_model(args.config, checkpoint)
    if is_untrained(checkpoint):
        randomise_norm_statistics(model)
    size = args.input or model_input_size(model, model.cfg)
    return model.eval(), tuple(size)


@torch.no_grad()
def randomise_norm_statistics(model: nn.Module, seed: int = 0) -> None:
    """Give every batch norm the non-trivial statistics and affine parameters
    of a trained model: variance and scale U(0.5, 1.5), mean and shift
    N(0, 0.1)."""
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if not isinstance(m, _BatchNorm) or m.running_mean is None:
            continue
        for tensor, uniform in ((m.running_var, True), (m.weight, True),
                                (m.running_mean, False), (m.bias, False)):
            if tensor is not None:
                draw = torch.rand if uniform else torch.randn
                values = draw(tensor.shape, generator=generator)
                tensor.copy_(values + 0.5 if uniform else values * 0.1)


def build_model(config: Union[str, Config]) -> nn.Module:
    """The eval-mode model of ``config`` with random weights."""
    # Without the backbone's pretrained file: speed does not depend on it.
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model).eval()


def random_crops(batch: int,
                 size: Tuple[int, int],
                 model: Optional[nn.Module] = None,
                 seed: int = 0) -> Tensor:
    """``(batch, 3, H, W)`` standard-normal crops, as normalised images are,
    on the device of ``model``."""
    crops = torch.randn(
        batch, 3, *size, generator=torch.Generator().manual_seed(seed))
    return crops if model is None else crops.to(
        next(model.parameters()).device)


def inference(model: nn.Module, inputs: Tensor) -> Callable[[], Any]:
    """A call of the network alone (``mode='tensor'``), eval, no gradients."""

    def run() -> Any:
        model.eval()
        with torch.no_grad():
            return model(inputs, None, mode='tensor')

    return run


def training_step(model: nn.Module,
                  loss: Callable[[], Tensor],
                  optim_wrapper: Optional[OptimWrapper] = None
                  ) -> Callable[[], None]:
    """A call of one step in train mode: ``loss()``, backward and the update
    by ``optim_wrapper`` when given."""

    def step() -> None:
        model.train()
        if optim_wrapper is None:
            loss().backward()
        else:
            optim_wrapper.update_params(loss())

    return step

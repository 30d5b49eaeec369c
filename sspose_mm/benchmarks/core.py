"""What every benchmark suite shares: a registry, a report, timers.

A suite is a function ``bench(args, report)`` registered under a name in
:data:`BENCHMARKS` (an mmengine ``Registry``); its docstring is its help::

    @BENCHMARKS.register_module('speed')
    def bench(args: argparse.Namespace, report: Report) -> None:
        '''Fast path vs original computation.'''
        report.section('TransPose-R-A4, batch 8')
        seconds = time_per_call(lambda: model(x), label='fast path')
        report.row('fast path', args.batch / seconds, 'crops/s')

``tools/benchmark.py CONFIG --suite NAME`` runs it. ``args`` carries
``config`` (path or None; :func:`load_model` builds it), ``checkpoint`` (path
or None), ``batch``,
``threads``, ``input`` (``(H, W)`` or None: the config's size) and ``repeat``.

Timings are medians of wall-clock time, taken after warm-up calls, so the
first call's allocations and one-off work (lazy init, ``torch.compile``) are
not counted and one slow call caused by another process does not skew them.
"""
import argparse
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

BenchmarkFn = Callable[[argparse.Namespace, 'Report'], None]
GIB = 1024**3

# Suites by name; a suite's docstring (first paragraph) is its --list help.
BENCHMARKS = Registry('benchmark suite')


def get_benchmark(name: str) -> BenchmarkFn:
    """The suite ``name``, or a ConfigError listing the known ones."""
    # module_dict, not BENCHMARKS.get: get imports dotted names as modules.
    if name not in BENCHMARKS.module_dict:
        raise ConfigError(f'unknown benchmark suite "{name}"; known: '
                          f'{", ".join(sorted(BENCHMARKS.module_dict))}.')
    return BENCHMARKS.module_dict[name]


def format_suite_list() -> str:
    """One line per suite: its name and help (the first paragraph of its
    docstring), as ``tools/benchmark.py --list`` prints them."""
    return '\n'.join(f'{name:<24s} ' +
                     ' '.join(suite.__doc__.split('\n\n')[0].split())
                     for name, suite in sorted(BENCHMARKS.module_dict.items()))


def run_suites(args: argparse.Namespace) -> 'Report':
    """Run the suites named in ``args.suite`` on ``args.threads`` torch
    threads into a new report (printed as it comes).

    Raises:
        ConfigError: An unknown suite, or ``args.batch``, ``args.threads``
            or ``args.repeat`` below 1 (checked before anything runs).
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
    """Results of one benchmark run, printed as tables and dumped as JSON.

    Rows are printed as they are added (``live``), so a long run shows its
    results as it goes; :meth:`format` gives the whole report at the end.

    Args:
        live (bool): Print each section title and row (to stdout) when it
            is added.
    """

    def __init__(self, live: bool = True) -> None:
        self.sections: List[Section] = []
        self.machine = describe_machine()
        self.live = live

    def section(self, title: str) -> None:
        """Start a new table; following rows belong to it."""
        self.sections.append(Section(title))
        self._print(f'\n== {title}')

    def row(self, what: str, value: float, unit: str, note: str = '') -> None:
        """Add one measured value to the current section."""
        if not self.sections:
            self.section('results')
        row = Row(what, float(value), unit, note)
        self.sections[-1].rows.append(row)
        self._print(_format_row(row))

    def find(self, section: str, what: str) -> Row:
        """The row ``what`` of the section titled ``section``.

        Raises:
            KeyError: There is no such row.
        """
        for sec in self.sections:
            if sec.title == section:
                for row in sec.rows:
                    if row.what == what:
                        return row
        raise KeyError(f'no row "{what}" in section "{section}"')

    def dump_json(self, path: str) -> None:
        """Write the machine and the sections to ``path`` (the ``--json``
        record)."""
        sections = [asdict(sec) for sec in self.sections]
        with open(path, 'w') as f:
            json.dump(
                dict(machine=self.machine, sections=sections), f, indent=2)

    def format(self) -> str:
        """The whole report as text tables, machine description first."""
        lines = [
            'machine: ' + ', '.join(f'{k} {v}'
                                    for k, v in self.machine.items())
        ]
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
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    machine = {
        'cpu': cpu,
        'cores': os.cpu_count(),
        'torch_threads': torch.get_num_threads(),
        'torch': torch.__version__,
        'python': platform.python_version()
    }
    if hasattr(os, 'getloadavg'):
        machine['load_1min_at_start'] = round(os.getloadavg()[0], 2)
    if torch.cuda.is_available():
        machine['gpu'] = torch.cuda.get_device_name(0)
    return machine


def time_per_call(fn: Callable[[], Any],
                  warmup: int = 1,
                  repeat: int = 3,
                  label: str = 'timing') -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` calls.

    ``warmup`` calls run first and are not counted. On CUDA the device is
    synchronised around every call. A progress bar on stderr shows the calls
    when stderr is a terminal.

    Raises:
        ValueError: ``repeat`` is below 1 or ``warmup`` below 0.
    """
    return interleaved_times({label: fn}, warmup, repeat, label)[label]


def interleaved_medians(calls: Dict[str, Callable[[], Dict[str, float]]],
                        warmup: int = 1,
                        repeat: int = 3,
                        label: str = 'timing') -> Dict[str, Dict[str, float]]:
    """Medians of the times several calls measure, in interleaved rounds.

    Each round calls every function once, in order, so that a change of the
    machine's load during the measurement (other processes on shared cores)
    affects all of them alike and their ratios stay meaningful; separate
    :func:`time_per_call` runs would each see a different load. Each call
    returns the seconds it measured, by name (several per call: the
    pipeline suite's CPU time of each transform).

    Returns:
        dict: For each key of ``calls``, the median of each time it
        reported over the rounds after the ``warmup`` ones.

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
    return {
        name: {
            key: statistics.median(values)
            for key, values in measured.items()
        }
        for name, measured in times.items()
    }


def interleaved_times(calls: Dict[str, Callable[[], Any]],
                      warmup: int = 1,
                      repeat: int = 3,
                      label: str = 'timing') -> Dict[str, float]:
    """Median wall-clock seconds of each of several calls, timed in
    interleaved rounds (:func:`interleaved_medians`; CUDA synchronised
    around each call when in use).

    Returns:
        dict: The median for each key of ``calls``.
    """
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (
        lambda: None)

    def timed(fn: Callable[[], Any]) -> Dict[str, float]:
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return {'seconds': time.perf_counter() - start}

    medians = interleaved_medians(
        {
            name: partial(timed, fn)
            for name, fn in calls.items()
        }, warmup, repeat, label)
    return {name: median['seconds'] for name, median in medians.items()}


def peak_rss_of(fn: Callable[[], Any]) -> int:
    """Peak resident memory, in bytes, of a forked child running ``fn()``.

    The child runs single-threaded (see below; the thread count changes
    memory only by per-thread scratch buffers). It starts as a copy of this
    process, so the peak includes the memory this process has written (the
    model, tensors); subtract ``peak_rss_of(lambda: None)`` for what ``fn``
    itself adds. Measuring in a child keeps each measurement independent of
    earlier ones: a process's ``ru_maxrss`` never goes down.

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
            # GNU OpenMP's thread pool does not survive fork(): the first
            # parallel region of the child would wait forever for the
            # parent's threads. One thread never enters such a region.
            torch.set_num_threads(1)
            _release_heap_and_reset_peak()
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
    """GiB that each call adds at its peak to this process as it is
    (:func:`peak_rss_of` of the call less that of an empty one).

    Measure before the process computes anything: each call runs in a
    forked child, which reuses heap pages the parent has freed but kept.
    """
    empty = peak_rss_of(lambda: None)
    return {
        name: (peak_rss_of(call) - empty) / GIB
        for name, call in calls.items()
    }


def _release_heap_and_reset_peak() -> None:
    """Give the heap memory this process freed but kept back to the system
    (glibc's ``malloc_trim``) and start the peak resident memory from what
    is left (Linux's ``clear_refs``), so that ``fn`` in the child counts all
    the memory it needs instead of reusing pages freed earlier (by a test
    run before it, say). Elsewhere nothing is released or reset."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except (AttributeError, OSError):
        pass


def sgemm_call(n: int = 2048) -> Tuple[Callable[[], Any], int]:
    """One ``n x n`` float32 matrix product to time, and its FLOPs."""
    a = torch.randn(n, n)
    b = torch.randn(n, n)
    out = torch.empty(n, n)
    return (lambda: torch.mm(a, b, out=out)), 2 * n**3


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of ``fn()`` counted by ``torch.utils.flop_counter``.

    Convention: one multiply-accumulate = 2 FLOPs; only matrix products,
    convolutions (incl. transposed) and attention are counted, not
    normalisation, activations or additions (so it is about 2x the "GMACs"
    of papers, and of the TransPose README, whose counter says 1 MAC = 1
    FLOP). PyTorch's counter knows the fused attention kernels of CUDA but
    not the CPU one, which the package's attention runs on CPU; its
    formula (``4 N_q N_k C`` per head and image) is added for that kernel.
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
    """The eval-mode model of ``args.config`` and the ``(H, W)`` to run it at.

    Weights come from ``args.checkpoint`` when given (all of them, or it
    stops: :func:`sspose_mm.apis.loading.init_model`); without one, or with
    ``"none"``, they are random and the batch-norm statistics are randomised
    too (:func:`randomise_norm_statistics`), so that checks comparing two
    computations of the model are not blind to the norms. The size is
    ``args.input`` or the config's codec input size.

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
    """Give every batch norm non-trivial affine parameters and running
    statistics (scale and variance in [0.5, 1.5], shift and mean N(0, 0.1)),
    as a trained model has, instead of the identity of a fresh one."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if not isinstance(module, _BatchNorm) or module.running_mean is None:
            continue
        for tensor, low_high in ((module.running_var,
                                  (0.5, 1.5)), (module.weight, (0.5, 1.5)),
                                 (module.running_mean, None), (module.bias,
                                                               None)):
            if tensor is None:
                continue
            if low_high is None:
                values = torch.randn(tensor.shape, generator=generator) * 0.1
            else:
                low, high = low_high
                values = low + (high - low) * torch.rand(
                    tensor.shape, generator=generator)
            tensor.copy_(values)


def build_model(config: Union[str, Config]) -> nn.Module:
    """The eval-mode model of ``config`` with random weights, without the
    backbone's pretrained file (speed, FLOPs and memory do not depend on
    the weights)."""
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    init_default_scope(cfg.get('default_scope', 'mmpose'))
    cfg.model.backbone.init_cfg = None
    return MODELS.build(cfg.model).eval()


def random_crops(batch: int,
                 size: Tuple[int, int],
                 model: Optional[nn.Module] = None,
                 seed: int = 0) -> Tensor:
    """``(batch, 3, H, W)`` standard-normal crops (as normalised images
    are), the same for a seed, on the device of ``model``."""
    crops = torch.randn(
        batch, 3, *size, generator=torch.Generator().manual_seed(seed))
    return crops if model is None else crops.to(
        next(model.parameters()).device)


def inference(model: nn.Module, inputs: Tensor) -> Callable[[], Any]:
    """A call of the model's forward pass (``mode='tensor'``: the network
    only, no decoding) on ``inputs``, in eval mode and without gradients."""

    def run() -> Any:
        model.eval()
        with torch.no_grad():
            return model(inputs, None, mode='tensor')

    return run


def training_step(model: nn.Module,
                  loss: Callable[[], Tensor],
                  optim_wrapper: Optional[OptimWrapper] = None
                  ) -> Callable[[], None]:
    """A call of one training step in train mode: ``loss()`` and its
    backward, and the update by ``optim_wrapper`` (its ``update_params``)
    when one is given."""

    def step() -> None:
        model.train()
        if optim_wrapper is None:
            loss().backward()
        else:
            optim_wrapper.update_params(loss())

    return step

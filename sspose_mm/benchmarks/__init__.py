"""Benchmark suites, run by ``tools/benchmark.py CONFIG --suite NAME``.

Each module below registers its suites with
:func:`~sspose_mm.benchmarks.core.register_benchmark` when imported.
"""
from . import core  # noqa: F401
from . import speed  # noqa: F401
from .core import BENCHMARKS, Report, register_benchmark  # noqa: F401
from . import higherpose  # noqa: F401
from . import sspose  # noqa: F401
from . import sharpose  # noqa: F401

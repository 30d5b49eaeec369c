"""Benchmark suites, run by ``tools/benchmark.py CONFIG --suite NAME``; each
module registers its suites in :data:`~.core.BENCHMARKS` when imported."""
from . import higherpose  # noqa: F401
from . import pipeline  # noqa: F401
from . import sharpose  # noqa: F401
from . import speed  # noqa: F401
from . import sspose  # noqa: F401
from . import train_step  # noqa: F401
from .core import BENCHMARKS, Report  # noqa: F401

"""sspose-mm: transformer human-pose models as an MMPose 1.x plugin.

Importing the package applies the environment fixes of :mod:`sspose_mm.compat`
(before mmpose is imported) and registers every module in mmpose's registries.
"""
from . import compat  # noqa: F401  (must come before any mmpose import)
from . import apis, codecs, datasets, engine, models  # noqa: F401,E402
from .version import __version__  # noqa: E402

__all__ = ['__version__']

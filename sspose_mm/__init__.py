"""sspose-mm: transformer human-pose models as an MMPose 1.x plugin.

Importing it registers its modules in MMPose's registries (after
:mod:`.compat`); the Python API is :mod:`.apis`, the tools' :mod:`.cli`.
"""
from . import compat  # noqa: F401  (must come before any mmpose import)
from . import codecs, datasets, engine, models  # noqa: F401,E402
from .version import __version__  # noqa: E402

__all__ = ['__version__']

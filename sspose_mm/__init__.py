"""sspose-mm: transformer human-pose models as an MMPose 1.x plugin.

Importing the package registers its modules in MMPose's registries, after
:mod:`sspose_mm.compat` has made mmpose importable on this stack. The
environment policies of the tools are :func:`sspose_mm.env.setup_env`;
the Python API is :mod:`sspose_mm.apis`, the tools' plumbing
:mod:`sspose_mm.cli`.
"""
from . import compat  # noqa: F401  (must come before any mmpose import)
from . import codecs, datasets, engine, models  # noqa: F401,E402
from .version import __version__  # noqa: E402

__all__ = ['__version__']

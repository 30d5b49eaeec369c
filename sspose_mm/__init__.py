"""sspose-mm: transformer human-pose models as an MMPose 1.x plugin.

Importing it registers its modules in MMPose's registries (after
:mod:`sspose_mm.compat`). The tools' policies: :func:`sspose_mm.env.setup_env`;
the Python API: :mod:`sspose_mm.apis`; the tools' plumbing: :mod:`.cli`.
"""
from . import compat  # noqa: F401  (must come before any mmpose import)
from . import codecs, datasets, engine, models  # noqa: F401,E402
from .version import __version__  # noqa: E402

__all__ = ['__version__']

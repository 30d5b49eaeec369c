"""Official checkpoint layouts beyond TransPose's (which lives in
``convert.py``); each module registers its layouts on import."""
from . import sspose  # noqa: F401
from . import sharpose  # noqa: F401

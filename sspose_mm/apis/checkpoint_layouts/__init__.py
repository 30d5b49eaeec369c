"""Official checkpoint layouts; each module registers its layouts in
:data:`~sspose_mm.apis.convert.CHECKPOINT_LAYOUTS` on import."""
from . import higherpose  # noqa: F401
from . import sharpose  # noqa: F401
from . import sspose  # noqa: F401
from . import transpose  # noqa: F401

"""Official checkpoint layouts, registered in ``CHECKPOINT_LAYOUTS``."""
from . import higherpose  # noqa: F401
from . import sharpose  # noqa: F401
from . import sspose  # noqa: F401
from . import transpose  # noqa: F401

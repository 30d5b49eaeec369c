from .atomic_checkpoint_hook import AtomicCheckpointHook  # noqa: F401
from .keypoint_transfer_hook import KeypointTransferHook  # noqa: F401
from .plain_checkpoint_hook import PlainCheckpointHook
from .exact_resume_hook import ExactResumeHook  # noqa: F401
from .nan_guard_hook import NanGuardHook  # noqa: F401
from .encoder_checkpoint_hook import EncoderCheckpointHook  # noqa: F401
from .reconstruction_vis_hook import ReconstructionVisHook  # noqa: F401
from .sharpose_quality_hook import SHaRPoseQualityHook  # noqa: F401

__all__ = ['PlainCheckpointHook']

from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_fit_hook import CheckpointFitHook
from .encoder_checkpoint_hook import EncoderCheckpointHook
from .exact_resume_hook import ExactResumeEpochBasedTrainLoop, ExactResumeHook
from .keypoint_transfer_hook import KeypointTransferHook
from .matmul_precision_hook import MatmulPrecisionHook
from .nan_guard_hook import NanGuardHook
from .plain_checkpoint_hook import PlainCheckpointHook
from .reconstruction_vis_hook import ReconstructionVisHook
from .sharpose_quality_hook import SHaRPoseQualityHook

__all__ = [
    'AtomicCheckpointHook', 'CheckpointFitHook', 'EncoderCheckpointHook',
    'ExactResumeEpochBasedTrainLoop', 'ExactResumeHook',
    'KeypointTransferHook', 'MatmulPrecisionHook', 'NanGuardHook',
    'PlainCheckpointHook', 'ReconstructionVisHook', 'SHaRPoseQualityHook'
]

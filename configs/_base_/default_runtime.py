# MMPose's runtime, plus the import that registers this package's modules
# (it also makes mmcv-lite, torch>=2.6 checkpoints and CPU DDP work) and a
# hook that keeps every checkpoint loadable with weights_only=True.
_base_ = 'mmpose::_base_/default_runtime.py'

custom_imports = dict(imports=['sspose_mm'], allow_failed_imports=False)
custom_hooks = [
    dict(type='SyncBuffersHook'),
    dict(type='PlainCheckpointHook'),
    dict(type='ExactResumeHook'),
    dict(type='NanGuardHook'),
]

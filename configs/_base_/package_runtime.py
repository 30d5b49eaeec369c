# The package's runtime as `package_*` values: default_runtime.py here
# assigns them over MMPose's runtime, and the configs inheriting an MMPose
# recipe (which brings MMPose's runtime) assign them over the recipe's
# (mmengine merges no two bases that set the same key).
package_custom_imports = dict(
    imports=['sspose_mm'], allow_failed_imports=False)
# The hooks every run of this package needs. They are default hooks, not
# custom ones: mmengine merges `default_hooks` by key but replaces a
# `custom_hooks` list, so a config that adds its own hooks (custom_hooks =
# [...]) keeps these. Switch one of the package's off with e.g.
# default_hooks = dict(nan_guard=dict(enable=False)); None removes only
# mmengine's own default hooks (timer, logger, ...).
#   checkpoint:        mmengine's CheckpointHook (its options unchanged)
#                      writing checkpoints and the last_checkpoint pointer
#                      atomically
#   checkpoint_fit:    load_from (or --resume FILE) loads whole or stops with
#                      one line; KeypointTransferHook and encoder checkpoints
#                      load part by name
#   sync_buffers:      MMPose's custom SyncBuffersHook, as a default hook
#                      (so the configs set custom_hooks = [] or their own)
#   plain_checkpoint:  checkpoints hold only tensors and plain values, so
#                      they load with weights_only=True anywhere
#   exact_resume:      --resume ends where an uninterrupted run would
#   nan_guard:         a NaN/inf loss or weight stops the run, keeping the
#                      last good checkpoint
#   matmul_precision:  'high' lets float32 matrix multiplications on CUDA
#                      use TensorFloat32, as PyTorch already does for
#                      convolutions (docs/gpu.md); 'highest' for full float32
package_default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook'),
    checkpoint_fit=dict(type='CheckpointFitHook'),
    sync_buffers=dict(type='SyncBuffersHook'),
    plain_checkpoint=dict(type='PlainCheckpointHook'),
    exact_resume=dict(type='ExactResumeHook'),
    nan_guard=dict(type='NanGuardHook'),
    matmul_precision=dict(type='MatmulPrecisionHook', precision='high'))
# cuDNN times its convolution algorithms for each new input shape and keeps
# the fastest (CUDA only; --deterministic turns it off again).
package_env_cfg = dict(cudnn_benchmark=True)

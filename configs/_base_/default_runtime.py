# MMPose's runtime, plus the import that registers this package's modules
# (it also makes mmcv-lite, torch>=2.6 checkpoints and CPU DDP work) and the
# hooks every run of this package needs. They are default hooks, not custom
# ones: mmengine merges `default_hooks` by key but replaces a `custom_hooks`
# list, so a config that adds its own hooks (custom_hooks = [...]) keeps
# these. Switch one off with e.g. default_hooks = dict(nan_guard=None)
# (the tools honour it; mmengine's Runner alone only for its own hooks).
#   checkpoint:       mmengine's CheckpointHook (its options unchanged) whose
#                     last_checkpoint pointer is written atomically
#   plain_checkpoint: checkpoints hold only tensors and plain values, so they
#                     load with weights_only=True anywhere
#   exact_resume:     --resume ends where an uninterrupted run would
#   nan_guard:        a NaN/inf loss or weight stops the run, keeping the
#                     last good checkpoint
_base_ = 'mmpose::_base_/default_runtime.py'

custom_imports = dict(imports=['sspose_mm'], allow_failed_imports=False)
default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook'),
    sync_buffers=dict(type='SyncBuffersHook'),
    plain_checkpoint=dict(type='PlainCheckpointHook'),
    exact_resume=dict(type='ExactResumeHook'),
    nan_guard=dict(type='NanGuardHook'))
custom_hooks = []
# CUDA settings (docs/gpu.md, "Throughput settings"); no effect on the CPU.
#   cudnn_benchmark:          cuDNN times its convolution algorithms for each
#                             new input shape and keeps the fastest
#                             (--deterministic turns it off again)
#   float32_matmul_precision: 'high' lets float32 matrix multiplications use
#                             TensorFloat32 as PyTorch already does for
#                             convolutions; 'highest' for full float32.
#                             Applied by tools/train.py and tools/test.py.
env_cfg = dict(cudnn_benchmark=True, float32_matmul_precision='high')

# HigherPose-W32 on CrowdPose at 512x512 (README: 49.5 AP on test), the
# released CrowdPose config (w32_512_adam_lr1e-3.yaml): the COCO-512 recipe
# with CrowdPose's data and model settings (_base_/higherpose_crowdpose.py).
# 12 images a batch need ~39 GiB: use more GPUs, or fewer with --auto-scale-lr
_base_ = [
    './ae_higherpose-w32_1xb12-300e_coco-512x512.py',
    './_base_/higherpose_crowdpose.py'
]

dataset_type = 'CrowdPoseDataset'
data_root = {{_base_.crowdpose_data_root}}
model = {{_base_.crowdpose_model}}
train_dataloader = {{_base_.crowdpose_train_dataloader}}
val_dataloader = {{_base_.crowdpose_val_dataloader}}
test_dataloader = val_dataloader
val_evaluator = {{_base_.crowdpose_evaluator}}
test_evaluator = val_evaluator
default_hooks = {{_base_.crowdpose_default_hooks}}

# HigherPose-W32 on CrowdPose at 256x256 (README: 49.1 AP on test; no
# released config): the COCO-256 recipe with CrowdPose's data and model
# settings (_base_/higherpose_crowdpose.py).
_base_ = [
    './ae_higherpose-w32_1xb12-300e_coco-256x256.py',
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

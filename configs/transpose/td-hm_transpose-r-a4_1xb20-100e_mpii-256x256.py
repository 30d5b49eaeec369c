# TransPose-R-A4 on MPII at 256x256 (PCKh@0.5), fine-tuned from its COCO
# checkpoint: the MPII recipe of _base_/transpose_mpii-256x256.py.
_base_ = [
    './td-hm_transpose-r-a4_1xb20-230e_coco-256x192.py',
    './_base_/transpose_mpii-256x256.py'
]

# Train the COCO model first, or convert the official release
# (tools/convert_ckpt.py checkpoints/tp_r_256x192_enc4_d256_h1024_mh8.pth
# checkpoints/transpose-r-a4.pth).
load_from = 'checkpoints/transpose-r-a4.pth'

data_root = {{_base_.mpii_data_root}}
input_size = {{_base_.mpii_input_size}}
codec = {{_base_.mpii_codec}}
model = {{_base_.mpii_model}}
train_pipeline = {{_base_.mpii_train_pipeline}}
val_pipeline = {{_base_.mpii_val_pipeline}}
train_dataloader = {{_base_.mpii_train_dataloader}}
val_dataloader = {{_base_.mpii_val_dataloader}}
test_dataloader = {{_base_.mpii_val_dataloader}}
# MpiiPCKAccuracy takes none of the COCO metric's arguments.
val_evaluator = dict(_base_.mpii_evaluator, _delete_=True)
test_evaluator = val_evaluator
train_cfg = {{_base_.mpii_train_cfg}}
default_hooks = {{_base_.mpii_default_hooks}}
custom_hooks = {{_base_.mpii_custom_hooks}}

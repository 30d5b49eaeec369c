# SHaRPose-Base, 256x192, alpha 0.4, on MPII (16 keypoints, PCKh@0.5 with
# MMPose's MpiiPCKAccuracy). Not an official config: AnxQ/sharpose ships
# COCO configs only (plus an MPII dataset_info), and its paper's MPII table
# could not be read, so this is the COCO base recipe on MPII: MAE ViT-B
# init, same schedule, augmentation, gate and quality-loss epochs. 256x192
# keeps the coarse / fine grids at 8x6 / 16x12 (20 of 48 coarse patches
# refined), the grids the MAE position table is resized to for COCO. The
# quality target's OKS uses MMPose's 16 MPII sigmas.
_base_ = [
    './td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192.py',
    '../_base_/datasets/mpii_topdown.py'
]

data_root = _base_.mpii_data_root

model = dict(
    backbone=dict(num_keypoints=16),
    head=dict(
        out_channels=16,
        metainfo=dict(from_file='configs/_base_/datasets/mpii.py')))

train_dataloader = dict(dataset=_base_.mpii_train)
val_dataloader = dict(dataset=_base_.mpii_val)
test_dataloader = val_dataloader
# MpiiPCKAccuracy takes none of the COCO metric's arguments.
val_evaluator = dict(_base_.mpii_evaluator, _delete_=True)
test_evaluator = val_evaluator

default_hooks = dict(checkpoint=dict(save_best='PCK'))

# Quickstart: SHaRPose-Small trained from scratch on the embedded synthetic
# people (python tools/make_synthetic_data.py) at 128x96: coarse pass 64x48
# (4x3 patches), half of them refined at 128x96, heatmaps 32x24. Model, loss,
# gate and decoding are SHaRPose-S's; data, schedule, input size and init
# differ: no MAE weights can be downloaded here, so no layer-wise lr decay
# (rate 1: it protects pretrained lower layers, there are none), and the
# quality loss and validation gating start after epoch 8 of 12 so that a
# short run exercises both.
_base_ = [
    './td-hm_sharpose-s-a0.5_4xb128-250e_coco-256x192.py',
    '../_base_/datasets/synthetic.py'
]

data_root = {{_base_.synthetic_data_root}}
input_size = (96, 128)
codec = dict(_base_.codec, input_size=input_size, heatmap_size=(24, 32))

model = dict(
    backbone=dict(
        img_sizes=((64, 48), (128, 96)), qp_start_epoch=8, init_cfg=None),
    head=dict(
        heatmap_size=codec['heatmap_size'], decoder=codec, qp_start_epoch=8))

# The recipe's pipelines at this size, without half-body crops, with
# milder rotation and MMPose's default box shift.
train_pipeline = [
    *_base_.train_pipeline[:3],
    dict(type='ClippedRandomBBoxTransform', rotate_sigma=15, rotate_factor=30),
    dict(_base_.train_pipeline[5], input_size=input_size),
    dict(type='GenerateTarget', encoder=codec),
    *_base_.train_pipeline[7:],
]
val_pipeline = [
    *_base_.val_pipeline[:2],
    dict(_base_.val_pipeline[2], input_size=input_size),
    *_base_.val_pipeline[3:],
]
# One worker and no pinned memory, as the CPU quickstart needs (the COCO
# recipe's 8 pinned workers are for GPUs).
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    pin_memory=False,
    dataset=dict(_base_.synthetic_train, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    pin_memory=False,
    dataset=dict(_base_.synthetic_topdown_val, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = {{_base_.synthetic_evaluator}}
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=50, by_epoch=False),
    dict(
        type='MultiStepLR',
        begin=0,
        milestones=[9, 11],
        gamma=0.1,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=4, max_keep_ckpts=1))

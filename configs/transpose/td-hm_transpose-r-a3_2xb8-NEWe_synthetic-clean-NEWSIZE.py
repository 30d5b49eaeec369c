# Quickstart: TransPose-R-A3 trained from scratch on the embedded synthetic
# people (python tools/make_synthetic_data.py) at 128x96, in about nine
# minutes on two CPU processes. Model, target, loss, decoding and test-time
# flip are R-A3's; data, schedule and input size differ. For a run this short
# (about 9,000 crops, no ImageNet weights) small batches (more updates) and
# milder augmentation (rotation sigma 15 clipped at 30, no half-body crops)
# learn about twice as fast as the recipe's.
_base_ = [
    './td-hm_transpose-r-a3_1xb28-230e_coco-256x192.py',
    '../_base_/datasets/synthetic.py'
]

data_root = {{_base_.synthetic_data_root}}
input_size = (96, 128)
codec = dict(_base_.codec, input_size=input_size, heatmap_size=(24, 32))

# No ImageNet weights can be downloaded here: everything starts from scratch,
# with MMPose's own ResNet initialisation.
model = dict(
    backbone=dict(init_cfg=[
        dict(type='Kaiming', layer=['Conv2d']),
        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
    ]),
    head=dict(decoder=codec))

# The recipe's pipelines at this size, without half-body crops.
train_pipeline = [
    *_base_.train_pipeline[:3],
    dict(type='ClippedRandomBBoxTransform', rotate_sigma=15, rotate_factor=30),
    dict(
        _base_.train_pipeline[5],
        input_size=input_size,
        heatmap_size=codec['heatmap_size']),
    dict(type='GenerateTarget', encoder=codec),
    *_base_.train_pipeline[7:],
]
val_pipeline = [
    *_base_.val_pipeline[:2],
    dict(
        _base_.val_pipeline[2],
        input_size=input_size,
        heatmap_size=codec['heatmap_size']),
    *_base_.val_pipeline[3:],
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(_base_.synthetic_train, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    dataset=dict(_base_.synthetic_topdown_val, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = {{_base_.synthetic_evaluator}}
test_evaluator = val_evaluator

# From scratch a higher lr than the recipe's 1e-4, with a short warmup.
max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=50, by_epoch=False),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs,
        eta_min=1e-5,
        begin=0,
        end=max_epochs,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=16)
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=4, max_keep_ckpts=1))

# Quickstart, bottom-up: HigherPose-W32 trained from scratch on the embedded
# synthetic people (python tools/make_synthetic_data.py; 320x256 images of
# one to three people) at 128x128, on two CPU processes:
#   ./dist_train.sh \
#       configs/higherpose/ae_higherpose-w32_2xb8-4e_synthetic-128x128.py 2
# Model, targets, losses, grouping and flip test are the COCO-256 recipe's;
# input size, data, schedule and initialisation differ. It shows the whole
# bottom-up loop running (about 3 minutes an epoch on two idle cores: 7-11
# CPU seconds per batch of 8); four epochs of 320 images from scratch do not
# make a usable model.
_base_ = [
    './ae_higherpose-w32_1xb12-300e_coco-256x256.py',
    '../_base_/datasets/synthetic.py'
]

data_root = {{_base_.synthetic_data_root}}
input_size = (128, 128)
codec = dict(
    _base_.codec,
    input_size=input_size,
    heatmap_size=(32, 32),
    higher_heatmap_sizes=[(64, 64)])

# No ImageNet weights can be downloaded here: everything starts from
# scratch, convolutions with Kaiming initialisation.
model = dict(
    backbone=dict(
        input_size=input_size,
        init_cfg=[
            dict(type='Kaiming', layer=['Conv2d']),
            dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])
        ]),
    head=dict(
        decoder=dict(codec, heatmap_size=input_size, higher_heatmap_sizes=[])))

# The recipe's pipelines with this input size and codec wherever a step
# takes them (mmengine evaluates a base's pipelines before this file runs).
train_pipeline = [
    dict(step, input_size=input_size) if 'input_size' in step else
    dict(step, encoder=codec) if 'encoder' in step else step
    for step in _base_.train_pipeline
]
val_pipeline = [
    dict(step, input_size=input_size) if 'input_size' in step else step
    for step in _base_.val_pipeline
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(_base_.synthetic_train, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1, dataset=dict(_base_.synthetic_val, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = {{_base_.synthetic_evaluator}}
test_evaluator = val_evaluator

# From scratch: a short warmup, then the recipe's lr with one step decay.
max_epochs = 4
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, begin=0, end=50, by_epoch=False),
    dict(
        type='MultiStepLR', begin=0, milestones=[3], gamma=0.1, by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))

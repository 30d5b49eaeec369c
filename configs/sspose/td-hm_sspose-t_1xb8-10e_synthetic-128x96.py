# Quickstart: fine-tune the tiny encoder of mae_sspose-t_1xb16-20e_
# synthetic-128x96.py (run it first) on the synthetic people at 128x96.
# Everything but the encoder size, data, input size, schedule and lr is
# td-hm_sspose-b_8xb64-210e's.
_base_ = [
    './td-hm_sspose-b_8xb64-210e_coco-256x192.py',
    '../_base_/datasets/synthetic.py'
]

data_root = {{_base_.synthetic_data_root}}
input_size = (96, 128)
codec = dict(_base_.codec, input_size=input_size, heatmap_size=(24, 32))
model = dict(
    backbone=dict(
        img_size=(128, 96),
        embed_dims=(64, 128, 192),
        depths=(2, 2, 4),
        num_heads=6,
        drop_path_rate=0.1,
        init_cfg=dict(checkpoint='work_dirs/mae_sspose-t_1xb16-20e_'
                      'synthetic-128x96/encoder_epoch_20.pth')),
    head=dict(in_channels=192, deconv_out_channels=(128, ), decoder=codec))

# The recipe's pipelines at this size, without half-body crops, rotation
# at most 30 degrees.
train_pipeline = [
    *_base_.train_pipeline[:3],
    dict(type='RandomBBoxTransform', rotate_factor=30),
    dict(_base_.train_pipeline[5], input_size=input_size),
    dict(type='GenerateTarget', encoder=codec),
    *_base_.train_pipeline[7:],
]
val_pipeline = [
    *_base_.val_pipeline[:2],
    dict(_base_.val_pipeline[2], input_size=input_size),
    *_base_.val_pipeline[3:],
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(_base_.synthetic_train, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(_base_.synthetic_topdown_val, pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = {{_base_.synthetic_evaluator}}
test_evaluator = val_evaluator

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(paramwise_cfg=dict(num_layers=4))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=50, start_factor=0.01, by_epoch=False),
    # Ends, and anneals over, train_cfg.max_epochs (mmengine's Runner).
    dict(type='CosineAnnealingLR', eta_min=1e-6, begin=0, by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=8)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=5, max_keep_ckpts=1))

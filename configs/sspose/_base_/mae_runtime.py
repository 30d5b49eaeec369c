# MAE pretraining on unlabeled images: SSposeMAE on the SSpose-B encoder,
# the official optimiser (AdamW, betas 0.9/0.95, wd 0.05 except on 1-D
# parameters and biases, lr = 1.5e-4 x batch / 256, per-iteration warmup then
# cosine), the encoder-checkpoint and reconstruction-picture hooks. No
# validation.
_base_ = ['../../_base_/default_runtime.py', './sspose-b_encoder.py']

model = dict(
    type='SSposeMAE',
    mask_ratio=0.75,
    hierarchical_mask=True,
    norm_pix_loss=True,
    decoder=dict(embed_dims=512, depth=8, num_heads=16),
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True))

# The official crop: torchvision's RandomResizedCrop, area 0.2-1 of the
# image, bicubic with antialiasing. Its ratio is the crop's own w/h: the
# official (3/4, 4/3) around 1 for square outputs, here around the output's
# 192/256 = 3/4, i.e. (3/4, 4/3) x 3/4, so that crops are not stretched on
# average (configs of another output aspect state their own).
train_pipeline = [
    dict(type='LoadImageOrSkip', skip=True),
    dict(
        type='RandomResizedCrop',
        input_size={{_base_.input_size}},
        scale=(0.2, 1.0),
        ratio=(0.5625, 1.0),
        interpolation='bicubic'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='PackPoseInputs')
]
train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='UnlabeledImageDataset', pipeline=train_pipeline))
val_dataloader = val_cfg = val_evaluator = None
test_dataloader = test_cfg = test_evaluator = None

max_epochs = 800
warmup_epochs = 40
# mmengine refuses a loop type beside the by_epoch=True of MMPose's
# runtime: _delete_ drops it.
train_cfg = dict(
    _delete_=True,
    type='ExactResumeEpochBasedTrainLoop',
    max_epochs=max_epochs)
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW',
        lr=1.5e-4 * 512 / 256,
        betas=(0.9, 0.95),
        weight_decay=0.05),
    # The official groups (timm's add_weight_decay) exempt every 1-D tensor;
    # mmengine's bias_decay_mult would match only parameters named exactly
    # 'bias' and miss the attention's in_proj_bias. Every bias here is 1-D.
    paramwise_cfg=dict(flat_decay_mult=0.))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        begin=0,
        end=warmup_epochs,
        by_epoch=True,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=0.,
        begin=warmup_epochs,
        end=max_epochs,
        by_epoch=True,
        convert_to_iter_based=True)
]
auto_scale_lr = dict(base_batch_size=512)

default_hooks = dict(checkpoint=dict(interval=40, max_keep_ckpts=2))
custom_hooks = [
    dict(type='EncoderCheckpointHook', interval=40),
    dict(type='ReconstructionVisHook', interval=1000),
]

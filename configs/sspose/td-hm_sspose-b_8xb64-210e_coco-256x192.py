# SSpose-B top-down heatmap pose model on COCO, 256x192, fine-tuned from the
# MAE-pretrained encoder (mae_sspose-b_8xb64-800e_coco-256x192.py writes it).
# The paper publishes no fine-tuning recipe: this is ViTPose-B's (AdamW 5e-4,
# wd 0.1, layer-wise lr decay 0.75 over the 11 transformer layers, drop path
# 0.3, 210 epochs, UDP heatmaps sigma 2, flip test) with MMPose's
# LayerDecayOptimWrapperConstructor, whose layer ids (patch_embed*/pos_embed
# 0, layers.i i+1, the rest top) are the official SSpose fine-tuning rule.
# Head: the last attention layer's 32x24 tokens, one 4x4 deconvolution to
# 64x48 and a 1x1 conv (TransPose-R's head shape).
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/coco_topdown.py',
    './_base_/sspose-b_encoder.py'
]

pretrained = ('work_dirs/mae_sspose-b_8xb64-800e_coco-256x192/'
              'encoder_epoch_800.pth')
codec = dict(
    type='UDPHeatmap', input_size=(192, 256), heatmap_size=(48, 64), sigma=2)

model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        drop_path_rate=0.3,
        trainable_pos_embed=True,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    head=dict(
        type='SSposeHead',
        in_channels=540,
        out_channels=17,
        deconv_out_channels=(256, ),
        deconv_kernel_sizes=(4, ),
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder=codec),
    test_cfg=dict(flip_test=True, flip_mode='heatmap', shift_heatmap=False))

train_pipeline = [
    dict(type='LoadImageOrSkip', skip=True),
    dict(type='GetBBoxCenterScale'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='RandomHalfBody'),
    dict(type='RandomBBoxTransform'),
    dict(type='TopdownAffine', input_size=codec['input_size'], use_udp=True),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='PackPoseInputs')
]
val_pipeline = [
    dict(type='LoadImageOrSkip', skip=False),
    dict(type='GetBBoxCenterScale'),
    dict(type='TopdownAffine', input_size=codec['input_size'], use_udp=True),
    dict(type='PackPoseInputs')
]
train_dataloader = dict(
    batch_size=64, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

# mmengine refuses a loop type beside the by_epoch=True of MMPose's
# runtime: _delete_ drops it.
train_cfg = dict(
    _delete_=True,
    type='ExactResumeEpochBasedTrainLoop',
    max_epochs=210,
    val_interval=10)
optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.1),
    constructor='LayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(num_layers=11, layer_decay_rate=0.75),
    clip_grad=dict(max_norm=1., norm_type=2))
param_scheduler = [
    dict(
        type='LinearLR', begin=0, end=500, start_factor=0.001, by_epoch=False),
    dict(
        type='MultiStepLR',
        # Ends at train_cfg.max_epochs (mmengine's Runner).
        begin=0,
        milestones=[170, 200],
        gamma=0.1,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=512)
default_hooks = dict(
    checkpoint=dict(save_best='coco/AP', rule='greater', max_keep_ckpts=1))

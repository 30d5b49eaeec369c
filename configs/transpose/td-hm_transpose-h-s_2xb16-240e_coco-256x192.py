# TransPose-H-S: HRNet-S-W32 (HRNet up to stage 3, stride 4) + 4 encoder
# layers, d 64, FFN 128, 1 head; a 1x1 conv to heatmaps, no deconvolution.
# Recipe of TP_H_w32_256x192_stage3_1_4_d64_h128_relu_enc4_mh1.yaml:
# 2 GPUs x 16, Adam 1e-4 -> 1e-5 cosine, 240 epochs. COCO val: 74.2 AP.
_base_ = './_base_/transpose_coco-256x192.py'

train_cfg = dict(max_epochs=240)

hrnet_width = 32
model = dict(
    backbone=dict(
        type='HRNetS',
        extra=dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block='BOTTLENECK',
                num_blocks=(4, ),
                num_channels=(64, )),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block='BASIC',
                num_blocks=(4, 4),
                num_channels=(hrnet_width, hrnet_width * 2)),
            stage3=dict(
                num_modules=4,
                num_branches=3,
                block='BASIC',
                num_blocks=(4, 4, 4),
                num_channels=(hrnet_width, hrnet_width * 2, hrnet_width * 4))),
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w32-36af842e.pth')),
    neck=dict(
        type='TransPoseEncoder',
        in_channels=hrnet_width,
        embed_dims=64,
        num_layers=4,
        num_heads=1,
        feedforward_channels=128,
        init_cfg=[
            dict(type='Xavier', layer='Linear', distribution='uniform'),
            dict(type='Normal', std=0.001, layer='Conv2d')
        ]),
    head=dict(in_channels=64, deconv_out_channels=None))

train_dataloader = dict(batch_size=16)
auto_scale_lr = dict(base_batch_size=32)

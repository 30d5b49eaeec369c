# TransPose-R-A4: ResNet-S (ResNet-50 up to layer2, stride 8) + 4 encoder
# layers, d 256, FFN 1024, 8 heads; one deconvolution to 1/4 resolution.
# Recipe of TP_R_256x192_d256_h1024_enc4_mh8.yaml: batch 20 on one GPU,
# Adam 1e-4 -> 1e-5 cosine, 230 epochs. COCO val (det. boxes): 72.6 AP.
_base_ = './_base_/transpose_coco-256x192.py'

model = dict(
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=2,
        strides=(1, 2),
        dilations=(1, 1),
        out_indices=(1, ),
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='TransPoseEncoder',
        in_channels=512,
        embed_dims=256,
        num_layers=4,
        num_heads=8,
        feedforward_channels=1024),
    head=dict(
        in_channels=256,
        deconv_out_channels=(256, ),
        deconv_kernel_sizes=(4, )))

train_dataloader = dict(batch_size=20)
# The original's lr is tuned for batch 20; TransPose-R is sensitive to it.
auto_scale_lr = dict(base_batch_size=20)

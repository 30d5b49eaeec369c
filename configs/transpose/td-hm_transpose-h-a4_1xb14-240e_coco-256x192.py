# TransPose-H-A4: HRNet-S-W48 + 4 encoder layers, d 96, FFN 192, 1 head
# (TP_H_w48_256x192_stage3_1_4_d96_h192_relu_enc4_mh1.yaml: batch 14 on
# one GPU in the yaml; the README trained on 4 GPUs). COCO val: 75.3 AP.
_base_ = './td-hm_transpose-h-s_2xb16-240e_coco-256x192.py'

hrnet_width = 48
model = dict(
    backbone=dict(
        extra=dict(
            stage2=dict(num_channels=(hrnet_width, hrnet_width * 2)),
            stage3=dict(
                num_channels=(hrnet_width, hrnet_width * 2, hrnet_width * 4))),
        init_cfg=dict(checkpoint='https://download.openmmlab.com/mmpose/'
                      'pretrain_models/hrnet_w48-8ef0771d.pth')),
    neck=dict(
        in_channels=hrnet_width, embed_dims=96, feedforward_channels=192),
    head=dict(in_channels=96))

train_dataloader = dict(batch_size=14)
auto_scale_lr = dict(base_batch_size=14)

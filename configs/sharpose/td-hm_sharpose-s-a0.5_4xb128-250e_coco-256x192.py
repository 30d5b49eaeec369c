# SHaRPose-Small, 256x192, alpha 0.5 (configs/sharpose_small_coco_256x192
# _4xb128_210e.py): ViT-S (384 dims, 12 heads of 32, ViTPose-S style) from
# MAE ViT-S weights, two-layer token MLP, layer decay 0.8, 4 GPUs x 128.
# As the original: 250 epochs although its file name says 210e (the lr steps
# stay at 170 and 200), alpha left at the class default 0.5, and validation
# gating and the quality loss both start after epoch 210, so the quality
# predictor is trained in epochs 211-250 only.
_base_ = ['./td-hm_sharpose-b-a0.4_4xb64-210e_coco-256x192.py']

max_epochs = 250
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.8))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, begin=0, end=500, by_epoch=False),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        milestones=[170, 200],
        gamma=0.1,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=512)

model = dict(
    backbone=dict(
        embed_dims=384,
        alpha=0.5,
        qp_start_epoch=210,
        # ViT-S MAE weights as distributed with ViTPose.
        init_cfg=dict(checkpoint='checkpoints/mae_pretrain_vit_small.pth')),
    head=dict(in_channels=384, qp_start_epoch=210))
train_dataloader = dict(batch_size=128)

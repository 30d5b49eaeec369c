# Quickstart: MAE pretraining of a tiny SSpose encoder ("-t": widths
# 64/128/192, depths 2/2/4, 6 heads; SSpose-B takes ~1.5 s per 128x96 image
# on one CPU core, far too slow for a quickstart) on the synthetic scenes of
# data/synthetic/train (python tools/make_synthetic_data.py) at 128x96.
# Reconstructions appear under work_dirs/<this config>/<timestamp>/vis_data/
# vis_image; work_dirs/<this config>/encoder_epoch_20.pth is what
# td-hm_sspose-t_1xb8-10e_synthetic-128x96.py fine-tunes. A short run learns
# faster with a larger lr than the recipe's 1.5e-4 x batch / 256.
_base_ = ['./_base_/mae_runtime.py', '../_base_/datasets/synthetic.py']

input_size = (96, 128)
model = dict(
    backbone=dict(
        img_size=(128, 96),
        embed_dims=(64, 128, 192),
        depths=(2, 2, 4),
        num_heads=6),
    decoder=dict(embed_dims=128, depth=2, num_heads=4))
train_pipeline = [
    _base_.train_pipeline[0],
    dict(_base_.train_pipeline[1], input_size=input_size),
    *_base_.train_pipeline[2:],
]
train_dataloader = dict(
    batch_size=16,
    num_workers=1,
    dataset=dict(
        data_root=_base_.synthetic_data_root,
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))

max_epochs = 20
warmup_epochs = 1
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
# The recipe's warm-up and cosine over these epochs. The cosine states its
# end: left to the Runner (train_cfg.max_epochs), a run of no more epochs
# than the warm-up would have a cosine that ends where it begins.
param_scheduler = [
    dict(_base_.param_scheduler[0], start_factor=1e-2, end=warmup_epochs),
    dict(
        _base_.param_scheduler[1],
        T_max=max_epochs - warmup_epochs,
        begin=warmup_epochs,
        end=max_epochs),
]
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=5, max_keep_ckpts=1))
custom_hooks = [
    dict(type='EncoderCheckpointHook', interval=5),
    dict(type='ReconstructionVisHook', interval=100),
]

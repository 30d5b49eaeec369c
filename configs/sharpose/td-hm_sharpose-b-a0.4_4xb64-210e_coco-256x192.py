# SHaRPose-Base, 256x192, alpha 0.4 (configs/sharpose_base_coco_256x192_4xb64
# _210e.py of AnxQ/sharpose): a ViT-B looks at the crop at 128x96 with a
# quality token and 17 keypoint tokens, and refines 40% of its 8x6 coarse
# patches at 256x192 (2x2 fine patches each) unless the quality predictor is
# confident (>= 0.99). The recipe is ViTPose-B's, inherited from MMPose: MAE
# ViT-B init, AdamW lr 5e-4 wd 0.1 with layer-wise lr decay 0.75,
# 500-iteration linear warmup, lr x0.1 at epochs 170 and 200, 210 epochs,
# UDP targets (sigma 2), flip test. SHaRPose changes the model, its own
# layer decay rule without gradient clipping, 4 GPUs x 64, the augmentation
# and every checkpoint kept. The quality loss (0.03 x MSE to the coarse
# pose's OKS) starts after epoch 180; validation is gated after epoch 180
# too.
_base_ = [
    'mmpose::body_2d_keypoint/topdown_heatmap/coco/'
    'td-hm_ViTPose-base_8xb64-210e_coco-256x192.py',
    '../_base_/package_runtime.py'
]

# The package's runtime over the recipe's MMPose runtime (mmengine merges no
# two bases that set the same key); the original keeps every checkpoint
# (ViTPose-B the last one).
custom_imports = _base_.package_custom_imports
default_hooks = dict(
    _base_.package_default_hooks,
    checkpoint=dict(
        _base_.package_default_hooks.checkpoint, max_keep_ckpts=-1))
env_cfg = _base_.package_env_cfg
custom_hooks = [dict(type='SHaRPoseQualityHook')]

# mmengine refuses a loop type beside the by_epoch=True of MMPose's
# runtime: _delete_ drops it.
train_cfg = dict(
    _delete_=True,
    type='ExactResumeEpochBasedTrainLoop',
    max_epochs=210,
    val_interval=10)
# SHaRPose's layer ids (its tokens, position tables and quality predictor),
# all 1-D parameters without decay (the constructor's rule replaces the
# recipe's custom_keys), no gradient clipping.
optim_wrapper = dict(
    _delete_=True,
    optimizer=_base_.optim_wrapper.optimizer,
    constructor='SHaRPoseLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.75))
auto_scale_lr = dict(base_batch_size=256)

model = dict(
    backbone=dict(
        _delete_=True,
        type='SHaRPoseViT',
        img_sizes=((128, 96), (256, 192)),
        num_keypoints=17,
        embed_dims=768,
        depth=12,
        num_heads=12,
        drop_path_rate=0.1,
        alpha=0.4,
        qp_threshold=0.99,
        qp_start_epoch=180,
        # The official options and ablation switches, as the official
        # configs leave them (docs/sharpose.md, "Options and ablations").
        replace_oks=False,
        qp_abs=False,
        feature_reuse=True,
        patch_selection='attention',
        # MAE's ViT-B (github.com/facebookresearch/mae, "pretrain"
        # checkpoint); its 14x14 position table is resized to both grids.
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mae_pretrain_vit_base.pth')),
    # The recipe's channels, loss and decoder, none of its deconvolutions.
    head=dict(
        _delete_=True,
        type='SHaRPoseHead',
        **{
            k: _base_.model.head[k]
            for k in ('in_channels', 'out_channels', 'loss', 'decoder')
        },
        heatmap_size=_base_.codec['heatmap_size'],
        metainfo=dict(from_file='configs/_base_/datasets/coco.py'),
        quality_loss_weight=0.03,
        qp_start_epoch=180,
        qp_type='oks',
        qp_abs=False,
        replace_oks=False,
        loss_distill=None))

# The original's ViTPose pipeline: box shift (0.16, p 0.3), flip, half body
# (> 8 visible joints, p 0.3), scale and rotation, UDP affine and target.
# ClippedRandomBBoxTransform draws MMPose 0.x's laws (not 1.x's normals
# truncated at one sigma): shift uniform in +-0.16 of the box, scale
# N(1, 0.5) clipped to [0.5, 1.5], rotation N(0, 40) clipped at 80 degrees
# with p 0.6. The order differs from 0.x: 1.x shifts the box together with
# scale and rotation, after the half-body crop, where 0.x shifts it first.
train_pipeline = [
    dict(type='LoadImageOrSkip', skip=True),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='RandomFlip', direction='horizontal'),
    dict(
        type='RandomHalfBody',
        min_total_keypoints=9,
        min_upper_keypoints=3,
        min_lower_keypoints=3,
        padding=1.5,
        prob=0.3,
        upper_prioritized_prob=0.69),
    dict(
        type='ClippedRandomBBoxTransform',
        shift_factor=0.16,
        shift_prob=0.3,
        scale_factor=(0.5, 1.5),
        rotate_sigma=40,
        rotate_factor=80),
    *_base_.train_pipeline[5:],
]
val_pipeline = [
    dict(type='LoadImageOrSkip', skip=False),
    dict(type='GetBBoxCenterScale', padding=1.25),
    *_base_.val_pipeline[2:],
]
# 8 workers per GPU with pinned memory: one worker prepares roughly 200
# crops/s of this pipeline, a GPU trains on several hundred (docs/gpu.md).
train_dataloader = dict(
    num_workers=8, pin_memory=True, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=8, pin_memory=True, dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

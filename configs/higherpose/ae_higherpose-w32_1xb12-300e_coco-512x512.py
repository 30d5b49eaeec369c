# HigherPose-W32 on COCO at 512x512 (README: 57.9 AP on test-dev2017):
# HRNet-W32 + structure-aware transformer, HigherHRNet head (1/4 heatmaps +
# tags, 1/2 heatmaps), associative-embedding grouping. 6 transformer layers,
# fixed sine position embedding (the COCO config).
# 12 images a batch need ~50 GiB: use more GPUs, or fewer with --auto-scale-lr
#
# The recipe is MMPose's associative-embedding HRNet-W32 (MMPose 1.3.2 has
# no HigherHRNet AE config; this is the nearest): its HRNet-W32 with
# ImageNet weights, data, evaluation and test settings, 300 epochs with lr
# x0.1 at 200 and 260. HigherPose changes the model, targets at two
# resolutions, Adam lr 1e-3 without warmup (the released config; its script
# never stepped the scheduler), 12 images per batch on one GPU, a
# checkpoint every 10 epochs and the augmentation: rotation +-30 deg, scale
# 0.75-1.5 of the short side, shift 0.2, horizontal flip.
_base_ = [
    'mmpose::body_2d_keypoint/associative_embedding/coco/'
    'ae_hrnet-w32_8xb24-300e_coco-512x512.py', '../_base_/package_runtime.py'
]

# The package's runtime over the recipe's MMPose runtime (mmengine merges no
# two bases that set the same key).
custom_imports = _base_.package_custom_imports
default_hooks = dict(
    _base_.package_default_hooks,
    checkpoint=dict(_base_.package_default_hooks.checkpoint, interval=10))
custom_hooks = []
env_cfg = _base_.package_env_cfg

# mmengine refuses a loop type beside the by_epoch=True of MMPose's
# runtime: _delete_ drops it.
train_cfg = dict(
    _delete_=True,
    type='ExactResumeEpochBasedTrainLoop',
    max_epochs=300,
    val_interval=10)
optim_wrapper = dict(optimizer=dict(lr=1e-3))
# Ends at train_cfg.max_epochs (mmengine's Runner sets a missing end).
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        milestones=[200, 260],
        gamma=0.1,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=12)

input_size = (512, 512)
# Grouping as HigherHRNet: keypoints are matched against the first 30 groups
# (MAX_NUM_PEOPLE) and every group is kept; MMPose's recipe matches against
# all and keeps the first 30 (decode_max_instances).
codec = dict(
    _base_.codec,
    type='MultiResolutionAssociativeEmbedding',
    higher_heatmap_sizes=[(256, 256)],
    decode_nms_kernel=5,
    decode_keypoint_thr=0.1,
    decode_tag_thr=1.0,
    decode_max_instances=None,
    decode_max_matched_groups=30)

model = dict(
    backbone=dict(
        type='HigherPoseHRNet',
        extra=dict(stage4=dict(multiscale_output=False)),
        num_layers=6,
        pos_embedding='sine',
        input_size=input_size),
    # The recipe's channels and keypoints, none of its other head options.
    head=dict(
        _delete_=True,
        type='HigherHRNetHead',
        **{k: _base_.model.head[k]
           for k in ('in_channels', 'num_keypoints')},
        # Grouping runs on heatmaps and tags resized to the input.
        decoder=dict(codec, heatmap_size=input_size, higher_heatmap_sizes=[])))

train_pipeline = [
    dict(type='LoadImageOrSkip', skip=True),
    dict(
        type='BottomupRandomAffine',
        input_size=input_size,
        shift_factor=0.2,
        scale_factor=(0.75, 1.5),
        scale_type='short',
        rotate_factor=30,
        distribution='uniform'),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='BottomupGetHeatmapMask'),
    dict(type='PackPoseInputs'),
]
val_pipeline = [dict(type='LoadImageOrSkip', skip=False)
                ] + _base_.val_pipeline[1:]
train_dataloader = dict(batch_size=12, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

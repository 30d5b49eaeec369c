# HigherPose-W32 (bottom-up): HRNet-W32 + structure-aware transformer,
# HigherHRNet head (1/4 heatmaps + tags, 1/2 heatmaps), associative-embedding
# grouping; 512x512 input, COCO keypoints. The dataset configs attach the
# pipelines below to their loaders.
#
# Recipe of the released configs, with what the original meant to do where
# its script did otherwise: Adam lr 1e-3 without weight decay, lr x0.1 at
# epochs 200 and 260 of 300 (the script never stepped its scheduler), 12
# images per batch on one GPU, HRNet-W32 ImageNet weights (MODEL.PRETRAINED;
# the script never loaded them). Augmentation: rotation +-30 deg, scale
# 0.75-1.5 of the short side, shift 0.2, horizontal flip.
_base_ = ['../../_base_/default_runtime.py']

input_size = (512, 512)
codec = dict(
    type='MultiResolutionAssociativeEmbedding',
    input_size=input_size,
    heatmap_size=(128, 128),
    higher_heatmap_sizes=[(256, 256)],
    sigma=2,
    decode_nms_kernel=5,
    decode_topk=30,
    decode_keypoint_thr=0.1,
    decode_tag_thr=1.0,
    decode_center_shift=0.5,
    decode_keypoint_order=[
        0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16
    ],
    decode_max_instances=30)

model = dict(
    type='BottomupPoseEstimator',
    data_preprocessor=dict(
        type='PoseDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        type='HigherPoseHRNet',
        in_channels=3,
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
                num_channels=(32, 64)),
            stage3=dict(
                num_modules=4,
                num_branches=3,
                block='BASIC',
                num_blocks=(4, 4, 4),
                num_channels=(32, 64, 128)),
            stage4=dict(
                num_modules=3,
                num_branches=4,
                block='BASIC',
                num_blocks=(4, 4, 4, 4),
                num_channels=(32, 64, 128, 256),
                multiscale_output=False)),
        num_layers=6,
        pos_embedding='sine',
        input_size=input_size,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='https://download.openmmlab.com/mmpose/'
            'pretrain_models/hrnet_w32-36af842e.pth')),
    head=dict(
        type='HigherHRNetHead',
        in_channels=32,
        num_keypoints=17,
        # Grouping runs on heatmaps and tags resized to the input.
        decoder=dict(codec, heatmap_size=input_size, higher_heatmap_sizes=[])),
    test_cfg=dict(
        multiscale_test=False,
        flip_test=True,
        shift_heatmap=False,
        restore_heatmap_size=True,
        align_corners=False))

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
val_pipeline = [
    dict(type='LoadImageOrSkip', skip=False),
    dict(
        type='BottomupResize',
        input_size=input_size,
        size_factor=64,
        resize_mode='expand'),
    dict(
        type='PackPoseInputs',
        meta_keys=('id', 'img_id', 'img_path', 'crowd_index', 'ori_shape',
                   'img_shape', 'input_size', 'input_center', 'input_scale',
                   'flip', 'flip_direction', 'flip_indices', 'raw_ann_info',
                   'skeleton_links'))
]

max_epochs = 300
# mmengine refuses a loop type beside the by_epoch=True of MMPose's
# runtime: _delete_ drops it.
train_cfg = dict(
    _delete_=True,
    type='ExactResumeEpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_interval=10)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        milestones=[200, 260],
        gamma=0.1,
        by_epoch=True)
]
auto_scale_lr = dict(base_batch_size=12)
default_hooks = dict(
    checkpoint=dict(save_best='coco/AP', rule='greater', interval=10))

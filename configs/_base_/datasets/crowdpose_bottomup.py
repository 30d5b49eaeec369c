# CrowdPose, bottom-up: trained on trainval, tested on test, as HigherHRNet.
# Get it from https://github.com/Jeff-sjtu/CrowdPose (images) and MMPose's
# converted annotations (mmpose_crowdpose_*.json); layout in data/README.md.
dataset_type = 'CrowdPoseDataset'
data_mode = 'bottomup'
data_root = 'data/crowdpose/'

train_dataloader = dict(
    batch_size=12,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/mmpose_crowdpose_trainval.json',
        data_prefix=dict(img='images/')))
# One image per batch: bottom-up inputs keep each image's aspect ratio.
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/mmpose_crowdpose_test.json',
        data_prefix=dict(img='images/'),
        test_mode=True))
test_dataloader = val_dataloader

# CrowdPose's AP (easy/medium/hard crowd index), no area ranges.
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/mmpose_crowdpose_test.json',
    nms_mode='none',
    score_mode='bbox',
    use_area=False,
    iou_type='keypoints_crowd',
    prefix='crowdpose')
test_evaluator = val_evaluator

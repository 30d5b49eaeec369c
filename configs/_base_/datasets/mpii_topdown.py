# MPII human pose (16 keypoints), top-down with the annotated person
# centre/scale; PCKh@0.5 with MMPose's MpiiPCKAccuracy on the validation
# split, whose head boxes come from the official mpii_gt_val.mat.
# Get the images from http://human-pose.mpi-inf.mpg.de and MMPose's json
# annotations (mpii_train.json, mpii_val.json, mpii_gt_val.mat); layout in
# docs/datasets.md. Research use only (MPII licence).
dataset_type = 'MpiiDataset'
data_mode = 'topdown'
data_root = 'data/mpii/'

train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/mpii_train.json',
        data_prefix=dict(img='images/')))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/mpii_val.json',
        headbox_file=data_root + 'annotations/mpii_gt_val.mat',
        data_prefix=dict(img='images/'),
        test_mode=True))
test_dataloader = val_dataloader

val_evaluator = dict(type='MpiiPCKAccuracy', thr=0.5, norm_item='head')
test_evaluator = val_evaluator

# COCO person keypoints, bottom-up: whole images, every person at once.
# Pipelines come from the model's config. Get COCO from https://cocodataset.org
# (train2017, val2017, annotations); layout in data/README.md.
dataset_type = 'CocoDataset'
data_mode = 'bottomup'
data_root = 'data/coco/'

train_dataloader = dict(
    batch_size=12,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/')))
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
        ann_file='annotations/person_keypoints_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True))
test_dataloader = val_dataloader

# Grouped people are scored by their mean keypoint score (bbox_scores);
# no OKS-NMS, as in MMPose's associative-embedding configs.
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/person_keypoints_val2017.json',
    nms_mode='none',
    score_mode='bbox')
test_evaluator = val_evaluator

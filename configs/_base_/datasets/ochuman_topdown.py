# OCHuman (heavily occluded people, COCO's 17 keypoints): an evaluation-only
# benchmark (no training split), tested with ground-truth boxes as its
# papers report it. CocoMetric on the OCHuman COCO-format json.
# Get OCHuman from https://github.com/liruilong940607/OCHumanApi (images and
# ochuman_coco_format_{val,test}_range_0.00_1.00.json); layout in
# docs/datasets.md.
dataset_type = 'OCHumanDataset'
data_mode = 'topdown'
data_root = 'data/ochuman/'

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
        ann_file='annotations/ochuman_coco_format_val_range_0.00_1.00.json',
        data_prefix=dict(img='images/'),
        test_mode=True))
test_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_mode=data_mode,
        ann_file='annotations/ochuman_coco_format_test_range_0.00_1.00.json',
        data_prefix=dict(img='images/'),
        test_mode=True))

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root +
    'annotations/ochuman_coco_format_val_range_0.00_1.00.json')
test_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root +
    'annotations/ochuman_coco_format_test_range_0.00_1.00.json')

# OCHuman (heavily occluded people, COCO's 17 keypoints): an evaluation-only
# benchmark (no training split), tested with ground-truth boxes as its
# papers report it. CocoMetric on the OCHuman COCO-format json.
# Get OCHuman from https://github.com/liruilong940607/OCHumanApi (images and
# ochuman_coco_format_{val,test}_range_0.00_1.00.json); layout in
# docs/datasets.md.
# As `ochuman_*` values that the OCHuman configs assign over their COCO
# config's dataset entries and evaluator (mmengine does not merge two bases
# that set the same key); the COCO config keeps data_mode, test_mode and
# pipelines.
ochuman_data_root = 'data/ochuman/'
ochuman_val = dict(
    type='OCHumanDataset',
    data_root=ochuman_data_root,
    ann_file='annotations/ochuman_coco_format_val_range_0.00_1.00.json',
    # Ground-truth boxes: None clears the COCO config's detections.
    bbox_file=None,
    data_prefix=dict(img='images/'))
ochuman_test = dict(
    ochuman_val,
    ann_file='annotations/ochuman_coco_format_test_range_0.00_1.00.json')
ochuman_val_evaluator = dict(
    type='CocoMetric',
    ann_file=ochuman_data_root + ochuman_val['ann_file'],
    prefix='ochuman')
ochuman_test_evaluator = dict(
    ochuman_val_evaluator,
    ann_file=ochuman_data_root + ochuman_test['ann_file'])

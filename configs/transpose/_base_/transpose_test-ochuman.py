# Testing a COCO-trained TransPose on OCHuman (heavily occluded people;
# COCO's 17 keypoints, so the model applies as is) with ground-truth boxes,
# as OCHuman results are usually reported: `ochuman_*` values that each
# variant's config assigns (see td-hm_transpose-*_test-ochuman). For the val
# split set test_dataloader.dataset.ann_file and test_evaluator.ann_file to
# ochuman_coco_format_val_range_0.00_1.00.json.
ochuman_data_root = 'data/ochuman/'
ochuman_test_dataloader = dict(
    dataset=dict(
        type='OCHumanDataset',
        data_root=ochuman_data_root,
        ann_file='annotations/ochuman_coco_format_test_range_0.00_1.00.json',
        bbox_file=None,
        data_prefix=dict(img='images/')))
ochuman_test_evaluator = dict(
    ann_file=ochuman_data_root +
    'annotations/ochuman_coco_format_test_range_0.00_1.00.json',
    prefix='ochuman')

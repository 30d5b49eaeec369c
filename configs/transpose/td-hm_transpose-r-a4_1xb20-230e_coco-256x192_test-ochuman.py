# The COCO-trained TransPose-R-A4, tested on OCHuman (heavily occluded
# people; COCO's 17 keypoints, so the model applies as is) with
# ground-truth boxes, as OCHuman results are usually reported.
# tools/test.py THIS_CONFIG checkpoints/transpose-r-a4.pth; for the val
# split set test_dataloader.dataset.ann_file and test_evaluator.ann_file
# to ochuman_coco_format_val_range_0.00_1.00.json.
_base_ = './td-hm_transpose-r-a4_1xb20-230e_coco-256x192.py'

data_root = 'data/ochuman/'
test_dataloader = dict(
    dataset=dict(
        type='OCHumanDataset',
        data_root=data_root,
        ann_file='annotations/ochuman_coco_format_test_range_0.00_1.00.json',
        bbox_file=None,
        data_prefix=dict(img='images/')))
val_dataloader = test_dataloader
test_evaluator = dict(
    ann_file=data_root +
    'annotations/ochuman_coco_format_test_range_0.00_1.00.json',
    prefix='ochuman')
val_evaluator = test_evaluator

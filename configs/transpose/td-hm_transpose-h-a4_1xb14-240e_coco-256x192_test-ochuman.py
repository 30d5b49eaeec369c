# The COCO-trained TransPose-H-A4, tested on OCHuman with ground-truth boxes
# (../_base_/datasets/ochuman_topdown.py; its val split: ochuman_val and
# ochuman_val_evaluator). Test with the COCO checkpoint:
# tools/test.py THIS_CONFIG checkpoints/transpose-h-a4.pth
_base_ = [
    './td-hm_transpose-h-a4_1xb14-240e_coco-256x192.py',
    '../_base_/datasets/ochuman_topdown.py'
]

data_root = {{_base_.ochuman_data_root}}
test_dataloader = dict(dataset=_base_.ochuman_test)
val_dataloader = test_dataloader
test_evaluator = _base_.ochuman_test_evaluator
val_evaluator = test_evaluator

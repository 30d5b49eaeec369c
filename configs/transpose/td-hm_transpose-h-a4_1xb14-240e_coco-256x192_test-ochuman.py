# The COCO-trained TransPose-H-A4, tested on OCHuman with ground-truth boxes
# (_base_/transpose_test-ochuman.py). Test with the COCO checkpoint:
# tools/test.py THIS_CONFIG checkpoints/transpose-h-a4.pth
_base_ = [
    './td-hm_transpose-h-a4_1xb14-240e_coco-256x192.py',
    './_base_/transpose_test-ochuman.py'
]

data_root = {{_base_.ochuman_data_root}}
test_dataloader = {{_base_.ochuman_test_dataloader}}
val_dataloader = {{_base_.ochuman_test_dataloader}}
test_evaluator = {{_base_.ochuman_test_evaluator}}
val_evaluator = {{_base_.ochuman_test_evaluator}}

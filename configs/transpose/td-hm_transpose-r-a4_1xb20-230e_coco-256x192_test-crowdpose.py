# The COCO-trained TransPose-R-A4, tested on CrowdPose (12 shared keypoints,
# crowd OKS AP; _base_/transpose_test-crowdpose.py says how). Test with the
# COCO checkpoint: tools/test.py THIS_CONFIG checkpoints/transpose-r-a4.pth
_base_ = [
    './td-hm_transpose-r-a4_1xb20-230e_coco-256x192.py',
    './_base_/transpose_test-crowdpose.py'
]

data_root = {{_base_.crowdpose_data_root}}
test_pipeline = {{_base_.crowdpose_test_pipeline}}
test_dataloader = {{_base_.crowdpose_test_dataloader}}
val_dataloader = {{_base_.crowdpose_test_dataloader}}
test_evaluator = {{_base_.crowdpose_test_evaluator}}
val_evaluator = {{_base_.crowdpose_test_evaluator}}

# CrowdPose for HigherPose, as `crowdpose_*` values that the CrowdPose
# configs assign over their COCO config's (mmengine does not merge two bases
# that set the same key): the data of ../../_base_/datasets/
# crowdpose_topdown.py (trained on trainval, tested on test, as
# HigherHRNet) and the model settings below.
_base_ = '../../_base_/datasets/crowdpose_topdown.py'

# The released CrowdPose config leaves the transformer settings at their
# defaults, 4 layers and a learned position embedding. 14 keypoints,
# grouped from the head down (top of head, neck, shoulders, hips, then the
# limbs).
crowdpose_model = dict(
    backbone=dict(num_layers=4, pos_embedding='learnable'),
    head=dict(
        num_keypoints=14,
        decoder=dict(decode_keypoint_order=[
            12, 13, 0, 1, 6, 7, 2, 3, 4, 5, 8, 9, 10, 11
        ])))

crowdpose_train_dataloader = dict(dataset=_base_.crowdpose_train)
crowdpose_val_dataloader = dict(dataset=_base_.crowdpose_test)
crowdpose_default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP'))

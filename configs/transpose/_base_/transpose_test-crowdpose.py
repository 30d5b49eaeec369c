# Testing a COCO-trained TransPose (17 keypoints, 256x192) on CrowdPose
# (test split, the person detections of MMPose's CrowdPose configs), as
# `crowdpose_*` values that each variant's config assigns (mmengine does not
# merge two bases that set the same key; see td-hm_transpose-*_test-crowdpose).
#
# CrowdPose annotates 14 keypoints: COCO's 12 body joints plus head top and
# neck, which a COCO model does not predict. Each sample is re-expressed in
# COCO's layout (ToKeypointLayout, so flip testing swaps COCO's pairs) and
# the crowd OKS AP is computed on the 12 keypoints both layouts share
# (SharedKeypointCocoMetric). Not comparable with CrowdPose AP over all 14
# keypoints of CrowdPose-trained models (docs/datasets.md).
_base_ = '../../_base_/datasets/crowdpose_topdown.py'

crowdpose_metainfo = dict(from_file='configs/_base_/datasets/crowdpose.py')
coco_metainfo = dict(from_file='configs/_base_/datasets/coco.py')
crowdpose_test_pipeline = [
    dict(type='LoadImageOrSkip', skip=False),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(
        type='ToKeypointLayout',
        source=crowdpose_metainfo,
        target=coco_metainfo),
    # The crop and heatmap sizes of every COCO TransPose config.
    dict(type='TransPoseAffine', input_size=(192, 256), heatmap_size=(48, 64)),
    dict(type='PackPoseInputs')
]
crowdpose_test_dataloader = dict(
    dataset=dict(
        _base_.crowdpose_topdown_test, pipeline=crowdpose_test_pipeline))
# CrowdPose indices 0-11 are COCO's 5-16 (shoulders to ankles, same order).
crowdpose_test_evaluator = dict(
    _base_.crowdpose_evaluator,
    type='SharedKeypointCocoMetric',
    gt_converter=dict(num_keypoints=12, mapping=[(i, i) for i in range(12)]),
    pred_converter=dict(
        num_keypoints=12, mapping=[(i + 5, i) for i in range(12)]))

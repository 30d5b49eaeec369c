# The COCO-trained TransPose-R-A4, tested on CrowdPose (test split, the
# person detections of MMPose's CrowdPose configs). Test with the COCO
# checkpoint: tools/test.py THIS_CONFIG checkpoints/transpose-r-a4.pth
#
# CrowdPose annotates 14 keypoints: COCO's 12 body joints plus head top and
# neck, which a COCO model does not predict. Each sample is re-expressed in
# COCO's layout (ToKeypointLayout, so flip testing swaps COCO's pairs) and
# the crowd OKS AP is computed on the 12 keypoints both layouts share
# (SharedKeypointCocoMetric). Not comparable with CrowdPose AP over all 14
# keypoints of CrowdPose-trained models (docs/datasets.md).
_base_ = './td-hm_transpose-r-a4_1xb20-230e_coco-256x192.py'

data_root = 'data/crowdpose/'
crowdpose_metainfo = dict(from_file='configs/_base_/datasets/crowdpose.py')
coco_metainfo = dict(from_file='configs/_base_/datasets/coco.py')
test_pipeline = [
    dict(type='LoadImage'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='ToKeypointLayout', source=crowdpose_metainfo,
         target=coco_metainfo),
    dict(
        type='TransPoseAffine',
        input_size={{_base_.input_size}},
        heatmap_size={{_base_.codec.heatmap_size}}),
    dict(type='PackPoseInputs')
]
test_dataloader = dict(
    dataset=dict(
        type='CrowdPoseDataset',
        data_root=data_root,
        ann_file='annotations/mmpose_crowdpose_test.json',
        bbox_file=data_root + 'annotations/det_for_crowd_test_0.1_0.5.json',
        data_prefix=dict(img='images/'),
        pipeline=test_pipeline))
val_dataloader = test_dataloader
# CrowdPose indices 0-11 are COCO's 5-16 (shoulders to ankles, same order).
test_evaluator = dict(
    type='SharedKeypointCocoMetric',
    ann_file=data_root + 'annotations/mmpose_crowdpose_test.json',
    use_area=False,
    iou_type='keypoints_crowd',
    prefix='crowdpose',
    gt_converter=dict(num_keypoints=12, mapping=[(i, i) for i in range(12)]),
    pred_converter=dict(
        num_keypoints=12, mapping=[(i + 5, i) for i in range(12)]))
val_evaluator = test_evaluator

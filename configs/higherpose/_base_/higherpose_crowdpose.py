# CrowdPose for HigherPose, as `crowdpose_*` values that the CrowdPose
# configs assign over their COCO config's (mmengine does not merge two bases
# that set the same key). Trained on trainval, tested on test, as
# HigherHRNet. Get the images from https://github.com/Jeff-sjtu/CrowdPose
# and MMPose's converted annotations (mmpose_crowdpose_*.json); layout in
# data/README.md.
crowdpose_data_root = 'data/crowdpose/'

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

crowdpose_train_dataloader = dict(
    dataset=dict(
        type='CrowdPoseDataset',
        data_root=crowdpose_data_root,
        ann_file='annotations/mmpose_crowdpose_trainval.json',
        data_prefix=dict(img='images/')))
crowdpose_val_dataloader = dict(
    dataset=dict(
        type='CrowdPoseDataset',
        data_root=crowdpose_data_root,
        ann_file='annotations/mmpose_crowdpose_test.json',
        data_prefix=dict(img='images/')))
# CrowdPose's AP (easy/medium/hard crowd index), no area ranges.
crowdpose_evaluator = dict(
    ann_file=crowdpose_data_root + 'annotations/mmpose_crowdpose_test.json',
    use_area=False,
    iou_type='keypoints_crowd',
    prefix='crowdpose')
crowdpose_default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP'))

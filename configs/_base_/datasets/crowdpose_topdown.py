# CrowdPose (14 keypoints: the 12 COCO body joints, head top and neck),
# trained on trainval, tested on test. Top-down testing uses the person
# detections MMPose's CrowdPose configs use. CocoMetric with the crowd OKS
# ('keypoints_crowd': AP per crowd index, easy/medium/hard) and no area
# ranges, as the CrowdPose benchmark defines it.
# Get CrowdPose from https://github.com/Jeff-sjtu/CrowdPose and MMPose's
# json conversions; layout in docs/datasets.md.
# As `crowdpose_*` values that the CrowdPose configs assign over their COCO
# config's dataset entries and evaluator (mmengine does not merge two bases
# that set the same key); the COCO config keeps data_mode, test_mode and
# pipelines.
crowdpose_data_root = 'data/crowdpose/'
crowdpose_train = dict(
    type='CrowdPoseDataset',
    data_root=crowdpose_data_root,
    ann_file='annotations/mmpose_crowdpose_trainval.json',
    data_prefix=dict(img='images/'))
crowdpose_test = dict(
    crowdpose_train, ann_file='annotations/mmpose_crowdpose_test.json')
crowdpose_topdown_test = dict(
    crowdpose_test,
    bbox_file=crowdpose_data_root +
    'annotations/det_for_crowd_test_0.1_0.5.json')
crowdpose_evaluator = dict(
    type='CocoMetric',
    ann_file=crowdpose_data_root + 'annotations/mmpose_crowdpose_test.json',
    use_area=False,
    iou_type='keypoints_crowd',
    prefix='crowdpose')

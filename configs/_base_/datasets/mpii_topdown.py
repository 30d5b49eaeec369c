# MPII human pose (16 keypoints), top-down with the annotated person
# centre/scale; PCKh@0.5 with MMPose's MpiiPCKAccuracy on the validation
# split, whose head boxes come from the official mpii_gt_val.mat.
# Get the images from http://human-pose.mpi-inf.mpg.de and MMPose's json
# annotations (mpii_train.json, mpii_val.json, mpii_gt_val.mat); layout in
# docs/datasets.md. Research use only (MPII licence).
# As `mpii_*` values that the MPII configs assign over their COCO config's
# dataset entries and evaluator (mmengine does not merge two bases that set
# the same key); the COCO config keeps data_mode, test_mode and pipelines.
mpii_data_root = 'data/mpii/'
mpii_train = dict(
    type='MpiiDataset',
    data_root=mpii_data_root,
    ann_file='annotations/mpii_train.json',
    data_prefix=dict(img='images/'))
# People come with annotated centres and scales: no detection file.
mpii_val = dict(
    mpii_train,
    ann_file='annotations/mpii_val.json',
    bbox_file=None,
    headbox_file=mpii_data_root + 'annotations/mpii_gt_val.mat')
mpii_evaluator = dict(type='MpiiPCKAccuracy', thr=0.5, norm_item='head')

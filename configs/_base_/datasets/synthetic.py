# The synthetic people of tools/make_synthetic_data.py (COCO format, layout
# in data/README.md), as `synthetic_*` values that the quickstart configs
# assign over their COCO config's (mmengine does not merge two bases that
# set the same key). Each config adds its pipelines and batch sizes.
synthetic_data_root = 'data/synthetic/'
synthetic_train = dict(
    data_root=synthetic_data_root,
    ann_file='annotations/person_keypoints_train.json',
    data_prefix=dict(img='train/'))
synthetic_val = dict(
    data_root=synthetic_data_root,
    ann_file='annotations/person_keypoints_val.json',
    data_prefix=dict(img='val/'))
# Top-down testing crops the people that the generated detections found.
synthetic_topdown_val = dict(
    synthetic_val,
    bbox_file=synthetic_data_root +
    'person_detection_results/val_detections.json')
synthetic_evaluator = dict(ann_file=synthetic_data_root +
                           'annotations/person_keypoints_val.json')

# The clean scenes of the TransPose quickstart (tools/quickstart.py runs
# `tools/make_synthetic_data.py --style clean --max-people 1 --out
# data/synthetic_clean`),
# in a data root of their own so that they never replace the cluttered
# scenes that the other synthetic configs read.
synthetic_clean_root = 'data/synthetic_clean/'
synthetic_clean_train = dict(synthetic_train, data_root=synthetic_clean_root)
synthetic_clean_topdown_val = dict(
    synthetic_topdown_val,
    data_root=synthetic_clean_root,
    bbox_file=synthetic_clean_root +
    'person_detection_results/val_detections.json')
synthetic_clean_evaluator = dict(ann_file=synthetic_clean_root +
                                 'annotations/person_keypoints_val.json')

# Seeded quickstart runs (no other base of theirs sets randomness, so it
# needs no prefix).
randomness = dict(seed=0)

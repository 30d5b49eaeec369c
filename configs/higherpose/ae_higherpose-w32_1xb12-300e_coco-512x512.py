# HigherPose-W32 on COCO at 512x512 (README: 57.9 AP on test-dev2017).
# 6 transformer layers, fixed sine position embedding (the COCO config).
# 12 images a batch need ~50 GiB: use more GPUs, or fewer with --auto-scale-lr
_base_ = ['./_base_/higherpose_hrnet-w32.py',
          '../_base_/datasets/coco_bottomup.py']

train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=_base_.val_pipeline))
test_dataloader = val_dataloader

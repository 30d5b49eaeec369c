# HigherPose-W32 on COCO at 256x256, the released COCO config
# (w32_256_adam_lr1e-3.yaml): 6 layers, sine position embedding.
_base_ = ['./_base_/higherpose_hrnet-w32_256x256.py',
          '../_base_/datasets/coco_bottomup.py']

train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=_base_.val_pipeline))
test_dataloader = val_dataloader

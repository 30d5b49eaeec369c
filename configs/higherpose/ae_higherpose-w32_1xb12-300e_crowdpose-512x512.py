# HigherPose-W32 on CrowdPose at 512x512, the released CrowdPose config
# (w32_512_adam_lr1e-3.yaml): it leaves the transformer settings at their
# defaults, 4 layers and a learned position embedding. 14 keypoints, grouped
# from the head down (top of head, neck, shoulders, hips, then the limbs).
# 12 images a batch need ~39 GiB: use more GPUs, or fewer with --auto-scale-lr
_base_ = ['./_base_/higherpose_hrnet-w32.py',
          '../_base_/datasets/crowdpose_bottomup.py']

keypoint_order = [12, 13, 0, 1, 6, 7, 2, 3, 4, 5, 8, 9, 10, 11]
model = dict(
    backbone=dict(num_layers=4, pos_embedding='learnable'),
    head=dict(
        num_keypoints=14,
        decoder=dict(decode_keypoint_order=keypoint_order)))

train_dataloader = dict(dataset=dict(pipeline=_base_.train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=_base_.val_pipeline))
test_dataloader = val_dataloader
default_hooks = dict(checkpoint=dict(save_best='crowdpose/AP'))

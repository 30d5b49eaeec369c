# HigherPose-W32 at 256x256 input (heatmaps 64x64 and 128x128), for the
# low-resolution setting of the paper; everything else as at 512.
_base_ = ['./higherpose_hrnet-w32.py']

input_size = (256, 256)
codec = dict(
    _base_.codec,
    input_size=input_size,
    heatmap_size=(64, 64),
    higher_heatmap_sizes=[(128, 128)])
model = dict(
    backbone=dict(input_size=input_size),
    head=dict(decoder=dict(
        codec, heatmap_size=input_size, higher_heatmap_sizes=[])))

train_pipeline = [
    dict(type='LoadImageOrSkip', skip=True),
    dict(_base_.train_pipeline[1], input_size=input_size),
    dict(type='RandomFlip', direction='horizontal'),
    dict(type='GenerateTarget', encoder=codec),
    dict(type='BottomupGetHeatmapMask'),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImageOrSkip', skip=False),
    dict(_base_.val_pipeline[1], input_size=input_size),
    _base_.val_pipeline[2],
]

# HigherPose-W32 on COCO at 256x256 (heatmaps 64x64 and 128x128), the
# released COCO config (w32_256_adam_lr1e-3.yaml) and the low-resolution
# setting of the paper: the 512 config at this input size.
_base_ = ['./ae_higherpose-w32_1xb12-300e_coco-512x512.py']

input_size = (256, 256)
codec = dict(
    _base_.codec,
    input_size=input_size,
    heatmap_size=(64, 64),
    higher_heatmap_sizes=[(128, 128)])
model = dict(
    backbone=dict(input_size=input_size),
    head=dict(
        decoder=dict(codec, heatmap_size=input_size, higher_heatmap_sizes=[])))

train_pipeline = [
    *_base_.train_pipeline[:1],
    dict(_base_.train_pipeline[1], input_size=input_size),
    _base_.train_pipeline[2],
    dict(type='GenerateTarget', encoder=codec),
    *_base_.train_pipeline[4:],
]
val_pipeline = [
    _base_.val_pipeline[0],
    dict(_base_.val_pipeline[1], input_size=input_size),
    *_base_.val_pipeline[2:],
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

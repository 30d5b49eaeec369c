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

# The recipe's pipelines with this input size and codec wherever a step
# takes them (mmengine evaluates a base's pipelines before this file runs).
train_pipeline = [
    dict(step, input_size=input_size) if 'input_size' in step else
    dict(step, encoder=codec) if 'encoder' in step else step
    for step in _base_.train_pipeline
]
val_pipeline = [
    dict(step, input_size=input_size) if 'input_size' in step else step
    for step in _base_.val_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

# HigherPose-W32 on CrowdPose at 512x512, tested as the released code tests:
# every image scaled to width 512 and centred in one 512x512 input
# (BottomupSquareResize: landscape images padded above and below, portrait
# images cropped), instead of the short side at 512 with the whole image
# kept. Training is the 512 config's; docs/higherpose.md compares the two.
_base_ = ['./ae_higherpose-w32_1xb12-300e_crowdpose-512x512.py']

val_pipeline = [
    _base_.val_pipeline[0],
    dict(
        type='BottomupSquareResize',
        input_size=_base_.input_size,
        size_factor=64),
    *_base_.val_pipeline[2:],
]
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader

# TransPose's schedule: Adam (no weight decay), lr 1e-4 cosine-annealed per
# epoch to 1e-5, no warmup, 230 epochs. Chained to the runtime because both
# set train_cfg (mmengine forbids a key in two sibling bases).
_base_ = '../default_runtime.py'

# mmengine refuses a loop type beside the by_epoch=True of MMPose's
# runtime: _delete_ drops it.
train_cfg = dict(
    _delete_=True,
    type='ExactResumeEpochBasedTrainLoop',
    max_epochs=230,
    val_interval=1)
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-4))
# No end or T_max: mmengine's Runner ends a scheduler without an end at
# train_cfg.max_epochs, and CosineAnnealingLR anneals over end - begin, so
# a config that changes the epochs changes train_cfg alone.
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=1e-5, begin=0, by_epoch=True)
]

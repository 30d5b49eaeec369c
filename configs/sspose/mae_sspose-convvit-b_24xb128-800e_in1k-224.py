# The released SSpose-B pretraining model exactly (ConvMAE's ConvViT-B:
# strides 4/8/16, widths 256/384/768, fusion added after the transformer,
# 224x224, decoder 512-d x 8 layers, 16 heads) and its ImageNet-1K recipe
# (PRETRAIN.md: 3 nodes x 8 GPUs x 128, blr 1.5e-4, 800 epochs, 40 warmup,
# norm-pix loss). Converted official checkpoints
# (tools/convert_ckpt.py, layout sspose-pretrain) load into this model;
# their backbone.* part initialises td-hm_sspose-convvit-b_*.
_base_ = ['./_base_/mae_runtime.py']

input_size = (224, 224)
model = dict(
    backbone=dict(
        img_size=(224, 224),
        patch_sizes=(4, 2, 2),
        embed_dims=(256, 384, 768),
        fusion='after_transformer'))
train_pipeline = [
    _base_.train_pipeline[0],
    # Square output: the official ratio range of the crop's w/h.
    dict(
        _base_.train_pipeline[1],
        input_size=input_size,
        ratio=(3. / 4., 4. / 3.)),
    *_base_.train_pipeline[2:],
]
train_dataloader = dict(
    batch_size=128,
    num_workers=10,
    dataset=dict(
        data_root='data/imagenet/',
        data_prefix=dict(img='train/'),
        pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * 3072 / 256))
auto_scale_lr = dict(base_batch_size=3072)

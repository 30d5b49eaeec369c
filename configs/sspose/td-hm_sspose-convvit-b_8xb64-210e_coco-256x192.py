# The pose model on the released SSpose-B encoder (ConvViT-B as in the code:
# strides 4/8/16, 16x12 tokens at 256x192, fusion after the transformer;
# 93.13M parameters with the head, backbone 88.93M, counted on the built
# model), initialised from the official pretraining checkpoint converted by
# tools/convert_ckpt.py (its 14x14 pos_embed is resized to 16x12 on
# loading). Not the published 49.5M pose model (see td-hm_sspose-b_*);
# everything else is td-hm_sspose-b_8xb64-210e's, with two deconvolutions
# (ViTPose-B's head) to reach 64x48 heatmaps from 16x12.
_base_ = ['./td-hm_sspose-b_8xb64-210e_coco-256x192.py']

model = dict(
    backbone=dict(
        patch_sizes=(4, 2, 2),
        embed_dims=(256, 384, 768),
        fusion='after_transformer',
        init_cfg=dict(checkpoint='checkpoints/sspose-b_pretrain_'
                      'converted.pth')),
    head=dict(
        in_channels=768,
        deconv_out_channels=(256, 256),
        deconv_kernel_sizes=(4, 4)))

# The SSpose-B encoder shared by pretraining and pose fine-tuning, so that a
# pretraining run's encoder checkpoint fits the pose backbone key for key.
# Assumptions (the pose architecture is not released, docs/sspose.md):
# strides 2/4/8 and fusion summed before the token Linear as in the paper's
# figure; the released code's module structure (no stage-3 conv blocks);
# ConvViT-B's stage-1/2 widths 256/384, depths 2/2/11, 12 heads; the
# transformer width 540 (45 per head) sizes the pose model (with its head)
# to 50.1M parameters, 1.2% above the published 49.5M.
input_size = (192, 256)
model = dict(
    backbone=dict(
        type='SSposeConvViT',
        img_size=(256, 192),
        patch_sizes=(2, 2, 2),
        embed_dims=(256, 384, 540),
        depths=(2, 2, 11),
        num_heads=12,
        mlp_ratio=4.,
        fusion='before_transformer'))

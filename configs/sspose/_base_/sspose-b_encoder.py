# The SSpose-B encoder shared by pretraining and pose fine-tuning, so that a
# pretraining run's encoder checkpoint fits the pose backbone key for key.
# Assumptions (the pose architecture is not released, docs/sspose.md):
# strides 2/4/8 and fusion summed before the token Linear as in the paper's
# figure; the released code's module structure (no stage-3 conv blocks);
# depths 2/2/11, 12 heads, ConvViT-B's stage-2 width 384. Widths
# 192/384/540 size the pose model (with its head, 256x192) to both published
# figures: 48.84M parameters (-1.3% of 49.5M) and 120.6 GFLOPs (-1.6% of
# 122.5), counting GFLOPs = 2 x multiply-adds (torch.utils.flop_counter:
# convolutions, matrix products and attention; 60.3 GMACs).
# tests/test_sspose_sizing.py holds both within 2%.
input_size = (192, 256)
model = dict(
    backbone=dict(
        type='SSposeConvViT',
        img_size=(256, 192),
        patch_sizes=(2, 2, 2),
        embed_dims=(192, 384, 540),
        depths=(2, 2, 11),
        num_heads=12,
        mlp_ratio=4.,
        fusion='before_transformer'))

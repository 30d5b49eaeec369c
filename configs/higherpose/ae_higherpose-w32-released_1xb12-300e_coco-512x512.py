# HigherPose-W32 on COCO at 512x512 with the released code's attention, the
# computation behind the README's 57.9 AP (test-dev2017): at each position
# the images of a batch attend to each other and only position 0's result
# is added to every token (docs/higherpose.md). Training depends on the
# batch composition (12 images per GPU as released); testing takes one image
# per batch, as the official test. Attention-weight dropout 0.1 as released
# (cheap here: B keys). Converted official checkpoints load here
# (tools/convert_ckpt.py).
_base_ = ['./ae_higherpose-w32_1xb12-300e_coco-512x512.py']

model = dict(backbone=dict(attention_mode='released', attn_drop=0.1))

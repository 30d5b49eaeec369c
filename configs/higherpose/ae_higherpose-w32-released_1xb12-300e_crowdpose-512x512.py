# HigherPose-W32 on CrowdPose at 512x512 with the released code's attention
# (README: 49.5 AP on test), see
# ae_higherpose-w32-released_1xb12-300e_coco-512x512.py.
_base_ = ['./ae_higherpose-w32_1xb12-300e_crowdpose-512x512.py']

model = dict(backbone=dict(attention_mode='released', attn_drop=0.1))

# The pose model on the released SSpose-B trunk initialised from the
# official ImageNet-fine-tuned checkpoint (the ConvViT-B classifier of
# FINETUNE.md) instead of the pretraining one, converted by
# tools/convert_ckpt.py (layout sspose-finetune: its fc_norm becomes the
# backbone's final norm, the 1000-class head is dropped). That network has
# no multi-scale fusion: fusion='none' (88.80M parameters with the head,
# backbone 84.60M). Everything else is td-hm_sspose-convvit-b_8xb64-210e's.
_base_ = ['./td-hm_sspose-convvit-b_8xb64-210e_coco-256x192.py']

model = dict(
    backbone=dict(
        fusion='none',
        init_cfg=dict(checkpoint='checkpoints/sspose-b_finetune_'
                      'converted.pth')))

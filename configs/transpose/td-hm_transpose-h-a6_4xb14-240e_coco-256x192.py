# TransPose-H-A6: H-A4 with 6 encoder layers, 4 GPUs x 14
# (TP_H_w48_256x192_stage3_1_4_d96_h192_relu_enc6_mh1.yaml). COCO val: 75.8 AP.
_base_ = './td-hm_transpose-h-a4_1xb14-240e_coco-256x192.py'

model = dict(neck=dict(num_layers=6))
auto_scale_lr = dict(base_batch_size=56)

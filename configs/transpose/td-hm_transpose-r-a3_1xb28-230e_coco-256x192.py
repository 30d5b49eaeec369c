# TransPose-R-A3: R-A4 with 3 encoder layers, batch 28
# (TP_R_256x192_d256_h1024_enc3_mh8.yaml). COCO val (det. boxes): 71.7 AP.
_base_ = './td-hm_transpose-r-a4_1xb20-230e_coco-256x192.py'

model = dict(neck=dict(num_layers=3))
train_dataloader = dict(batch_size=28)
auto_scale_lr = dict(base_batch_size=28)

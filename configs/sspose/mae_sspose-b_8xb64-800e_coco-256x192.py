# SSpose-B MAE pretraining on the COCO train2017 images (annotations not
# used), 256x192 crops so that the encoder's token grid is the pose grid.
# Recipe: the official ImageNet one (PRETRAIN.md: 800 epochs, 40 warmup,
# mask ratio 0.75, norm-pix loss) at batch 8x64 = 512 (lr scaled linearly);
# the paper states no COCO pretraining recipe. Writes
# encoder_epoch_<n>.pth every 40 epochs for td-hm_sspose-b_*.
_base_ = ['./_base_/mae_runtime.py']

data_root = 'data/coco/'
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/')))

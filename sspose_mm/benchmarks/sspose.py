"""``sspose-pretrain``: what SSpose pretraining and fine-tuning cost on CPU.

For the encoder of a pretraining config (default: SSpose-B, COCO 256x192),
images/s of MAE training steps (masked forward, backward, AdamW) at the
config's mask ratio and at 0, and of the pose model on the same encoder (the
fine-tuning config's head) in training and inference; parameters and FLOPs
of both.
"""
import argparse
import copy
from typing import Tuple

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from .core import (BENCHMARKS, Report, build_model, count_flops, inference,
                   random_crops, time_per_call, training_step)

DEFAULT_CONFIG = 'configs/sspose/mae_sspose-b_8xb64-800e_coco-256x192.py'
POSE_CONFIG = 'configs/sspose/td-hm_sspose-b_8xb64-210e_coco-256x192.py'


def build_models(config: str, input_size: Tuple[int, int]
                 ) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """The pretraining model of ``config`` and the pose model of
    ``POSE_CONFIG`` on the same encoder, for ``input_size``."""
    cfg = Config.fromfile(config)
    cfg.model.backbone.img_size = input_size
    pose = Config.fromfile(POSE_CONFIG)
    pose.model.backbone = copy.deepcopy(cfg.model.backbone)
    pose.model.backbone.trainable_pos_embed = True
    pose.model.head.in_channels = cfg.model.backbone.embed_dims[-1]
    return build_model(cfg), build_model(pose)


@BENCHMARKS.register_module('sspose-pretrain')
def bench(args: argparse.Namespace, report: Report) -> None:
    """SSpose MAE pretraining and fine-tuning images/s."""
    config = args.config or DEFAULT_CONFIG
    mae, pose = build_models(
        config, args.input
        or tuple(Config.fromfile(config).model.backbone.img_size))
    h, w = mae.backbone.img_size
    images = random_crops(args.batch, (h, w))
    ratio = mae.mask_ratio
    report.section(f'{config}: {h}x{w}, batch {args.batch}, '
                   f'{args.threads} threads')
    for what, model in (('pretraining', mae), ('pose', pose)):
        report.row(f'{what} model parameters',
                   sum(p.numel() for p in model.parameters()) / 1e6, 'M')
    pose_macs = count_flops(inference(pose, images[:1])) / 2
    with torch.no_grad():
        mae_macs = count_flops(lambda: mae(images[:1], mode='tensor')) / 2
    report.row(
        'pose model forward', pose_macs / 1e9, 'GMACs',
        'torch.utils.flop_counter / 2, attention included; the '
        'unit of the "GFLOPs" of the TransPose table')
    report.row(f'pretraining forward, mask ratio {ratio}', mae_macs / 1e9,
               'GMACs')
    adamw = dict(optimizer=dict(type='AdamW', lr=1e-6))
    for mask_ratio in (ratio, 0.):
        mae.mask_ratio = mask_ratio
        seconds = time_per_call(
            training_step(mae, lambda: mae(images, mode='loss')['loss'],
                          build_optim_wrapper(mae, adamw)),
            repeat=args.repeat,
            label=f'pretraining step, ratio {mask_ratio}')
        report.row(f'pretraining step, mask ratio {mask_ratio}',
                   args.batch / seconds, 'images/s',
                   'forward + backward + AdamW')
    mae.mask_ratio = ratio
    seconds = time_per_call(
        training_step(
            pose, lambda: pose(images, None, mode='tensor').square().mean(),
            build_optim_wrapper(pose, adamw)),
        repeat=args.repeat,
        label='fine-tuning step')
    report.row('fine-tuning step', args.batch / seconds, 'images/s',
               'forward + backward (MSE stand-in loss) + AdamW')
    seconds = time_per_call(
        inference(pose, images), repeat=args.repeat, label='pose inference')
    report.row('pose inference', args.batch / seconds, 'images/s')

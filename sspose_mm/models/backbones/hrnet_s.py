from typing import List, Tuple

import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmpose.models.backbones import HRNet
from mmpose.models.backbones.base_backbone import BaseBackbone
from mmpose.models.backbones.resnet import get_expansion
from mmpose.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class HRNetS(HRNet):
    """HRNet truncated after stage 3: the "HRNet-Small" stem of `TransPose`_.

    MMPose's :class:`HRNet` always builds four stages and only lets stage 4
    drop its low-resolution outputs. TransPose-H stops after stage 3, whose
    last module fuses only into the highest-resolution branch, so there is no
    stage 4, no ``transition3`` and no fuse rows 1/2 in the last stage-3
    module. Everything else (blocks, transitions, fuse layers, parameter
    names) is MMPose's, built by the inherited ``_make_*`` methods.

    Shapes: ``(B, 3, H, W)`` in, a 1-tuple ``(B, C, H/4, W/4)`` out, where
    ``C`` is the first stage-3 width (32 for -S, 48 for -A*).

    Args:
        extra (dict): ``stage1``, ``stage2`` and ``stage3`` as for
            :class:`HRNet`; a ``stage4`` entry is rejected.
        Other arguments: as for :class:`HRNet` (``frozen_stages`` up to 3).

    .. _`TransPose`: https://arxiv.org/abs/2012.14214
    """

    def __init__(self,
                 extra: dict,
                 in_channels: int = 3,
                 conv_cfg=None,
                 norm_cfg=dict(type='BN'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 zero_init_residual: bool = False,
                 frozen_stages: int = -1,
                 init_cfg=[
                     dict(type='Normal', std=0.001, layer=['Conv2d']),
                     dict(
                         type='Constant',
                         val=1,
                         layer=['_BatchNorm', 'GroupNorm'])
                 ]):
        if 'stage4' in extra:
            raise ValueError('HRNetS stops after stage 3; remove `stage4` '
                             'from `extra` (use HRNet for a full HRNet).')
        if frozen_stages > 3:
            raise ValueError(f'HRNetS has 3 stages, frozen_stages='
                             f'{frozen_stages} is out of range')
        # HRNet.__init__ insists on building stage 4, so its stem and stage
        # wiring are set up here and the stages come from its builders.
        BaseBackbone.__init__(self, init_cfg=init_cfg)
        self.extra = extra
        self.conv_cfg = conv_cfg
        self.norm_cfg = dict(norm_cfg)
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.frozen_stages = frozen_stages
        self.upsample_cfg = extra.get('upsample',
                                      dict(mode='nearest', align_corners=None))

        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, 64, postfix=1)
        self.norm2_name, norm2 = build_norm_layer(self.norm_cfg, 64, postfix=2)
        self.conv1 = build_conv_layer(
            conv_cfg, in_channels, 64, 3, stride=2, padding=1, bias=False)
        self.add_module(self.norm1_name, norm1)
        self.conv2 = build_conv_layer(
            conv_cfg, 64, 64, 3, stride=2, padding=1, bias=False)
        self.add_module(self.norm2_name, norm2)
        self.relu = nn.ReLU(inplace=True)

        self.stage1_cfg = extra['stage1']
        block = self.blocks_dict[self.stage1_cfg['block']]
        stage1_out = self.stage1_cfg['num_channels'][0] * get_expansion(block)
        self.layer1 = self._make_layer(block, 64, stage1_out,
                                       self.stage1_cfg['num_blocks'][0])

        self.stage2_cfg = extra['stage2']
        channels = self._stage_channels(self.stage2_cfg)
        self.transition1 = self._make_transition_layer([stage1_out], channels)
        self.stage2, pre_channels = self._make_stage(self.stage2_cfg, channels)

        self.stage3_cfg = extra['stage3']
        channels = self._stage_channels(self.stage3_cfg)
        self.transition2 = self._make_transition_layer(pre_channels, channels)
        self.stage3, _ = self._make_stage(
            self.stage3_cfg, channels, multiscale_output=False)
        self.out_channels = channels[0]

        self._freeze_stages()

    def _stage_channels(self, stage_cfg: dict) -> List[int]:
        block = self.blocks_dict[stage_cfg['block']]
        return [c * get_expansion(block) for c in stage_cfg['num_channels']]

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            for m in [self.conv1, self.norm1, self.conv2, self.norm2]:
                m.eval()
                for param in m.parameters():
                    param.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            modules = [self.layer1] if i == 1 else [getattr(self, f'stage{i}')]
            if i < 3:
                modules.append(getattr(self, f'transition{i}'))
            for m in modules:
                m.eval()
                for param in m.parameters():
                    param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.relu(self.norm2(self.conv2(x)))
        x = self.layer1(x)
        y_list = self.stage2(
            [x if t is None else t(x) for t in self.transition1])
        x_list = [
            y_list[i] if t is None else t(y_list[-1])
            for i, t in enumerate(self.transition2)
        ]
        return tuple(self.stage3(x_list))

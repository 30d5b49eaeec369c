from typing import List, Optional

from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmpose.engine.optim_wrappers import LayerDecayOptimWrapperConstructor
from torch import nn

from ...errors import ConfigError


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class SHaRPoseLayerDecayOptimWrapperConstructor(
        LayerDecayOptimWrapperConstructor):
    """Layer-wise lr decay with SHaRPose's layer ids and no-decay rule.

    MMPose's constructor (ViTPose) numbers mmpretrain ViT names, so on
    :class:`~sspose_mm.models.backbones.SHaRPoseViT` every block and token
    would get the head's lr, and it decays the 3-D keypoint tokens. Kept:
    its groups and lr ``layer_decay_rate ** (num_layers + 1 - layer_id)``
    (``paramwise_cfg``: ``num_layers``, 12 blocks, ``layer_decay_rate``).
    Replaced by the official rules: layer id 0 for names containing an
    ``EMBEDDING_NAMES`` entry, ``i + 1`` for ``backbone.blocks.i``, else
    ``num_layers + 1``; no weight decay for 1-D parameters, biases and
    names containing a ``NO_DECAY_NAMES`` entry.
    """

    EMBEDDING_NAMES = ('.cls_token', '.mask_token', '.pos_embed',
                       '.patch_embed', '.keypoint_tokens', '.quality_token')
    NO_DECAY_NAMES = ('cls_token', 'pos_embed', 'keypoint_tokens',
                      'quality_token', 'rel_pos_')

    def layer_id(self, name: str, max_layer_id: int) -> int:
        if any(part in name for part in self.EMBEDDING_NAMES):
            return 0
        if name.startswith('backbone.blocks.'):
            return int(name.split('.')[2]) + 1
        return max_layer_id

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   lr: Optional[float] = None) -> None:
        for key in ('num_layers', 'layer_decay_rate'):
            if key not in self.paramwise_cfg:
                raise ConfigError(f'{type(self).__name__} needs paramwise_cfg.'
                                  f'{key}, got {dict(self.paramwise_cfg)}')
        max_layer_id = self.paramwise_cfg['num_layers'] + 1
        rate = self.paramwise_cfg['layer_decay_rate']
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            no_decay = (
                param.ndim == 1 or name.endswith('.bias')
                or any(part in name for part in self.NO_DECAY_NAMES))
            layer = self.layer_id(name, max_layer_id)
            group_name = f'layer_{layer}_{"no_decay" if no_decay else "decay"}'
            if group_name not in groups:
                scale = rate**(max_layer_id - layer)
                groups[group_name] = dict(
                    weight_decay=0. if no_decay else self.base_wd,
                    params=[],
                    param_names=[],
                    lr_scale=scale,
                    group_name=group_name,
                    lr=scale * self.base_lr)
            groups[group_name]['params'].append(param)
            groups[group_name]['param_names'].append(name)
        params.extend(groups.values())

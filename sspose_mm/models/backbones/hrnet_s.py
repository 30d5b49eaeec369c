from mmpose.models.backbones import HRNet
from mmpose.registry import MODELS


@MODELS.register_module()
class HRNetS(HRNet):
    """HRNet truncated after stage 3: the "HRNet-Small" stem of `TransPose`_.

    MMPose's :class:`HRNet` always builds four stages. TransPose-H stops
    after stage 3, whose last module fuses into the highest-resolution
    branch only (no ``transition3``). :class:`HRNet` builds everything here
    with that stage 3 and an empty stage 4 (no modules, one branch, no
    parameters), which passes the stage-3 output through.

    Shapes: ``(B, 3, H, W)`` in, a 1-tuple ``(B, C, H/4, W/4)`` out, ``C``
    the first stage-3 width (32 for -S, 48 for -A*).

    Args:
        extra (dict): ``stage1`` to ``stage3`` as for :class:`HRNet`; a
            ``stage4`` entry is rejected.
        **kwargs: :class:`HRNet`'s other arguments (``frozen_stages`` <= 3).

    .. _`TransPose`: https://arxiv.org/abs/2012.14214
    """

    def __init__(self, extra: dict, **kwargs) -> None:
        if 'stage4' in extra:
            raise ValueError('HRNetS stops after stage 3; remove `stage4` '
                             'from `extra` (use HRNet for a full HRNet).')
        if kwargs.get('frozen_stages', -1) > 3:
            raise ValueError(f'HRNetS has 3 stages, frozen_stages='
                             f'{kwargs["frozen_stages"]} is out of range')
        stage3 = extra['stage3']
        empty_stage4 = dict(
            num_modules=0,
            num_branches=1,
            block=stage3['block'],
            num_blocks=stage3['num_blocks'][:1],
            num_channels=stage3['num_channels'][:1])
        super().__init__(dict(extra, stage4=empty_stage4), **kwargs)

    def _make_stage(self,
                    layer_config: dict,
                    in_channels: list,
                    multiscale_output: bool = True) -> tuple:
        """HRNet's, with stage 3 fusing into one branch at its end."""
        if layer_config is self.extra['stage3']:
            multiscale_output = False
        return super()._make_stage(layer_config, in_channels,
                                   multiscale_output)

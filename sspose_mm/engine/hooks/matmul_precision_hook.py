import torch
from mmengine.hooks import Hook
from mmpose.registry import HOOKS

from ...errors import ConfigError

PRECISIONS = ('highest', 'high', 'medium')


@HOOKS.register_module()
class MatmulPrecisionHook(Hook):
    """Set ``torch.set_float32_matmul_precision`` (one of ``PRECISIONS``).

    ``'high'`` lets float32 matrix products on CUDA use TensorFloat32, as
    PyTorch already does for convolutions; CPU products are the same either
    way. A hook because mmengine's ``env_cfg`` has no such key.
    """

    priority = 'VERY_HIGH'

    def __init__(self, precision: str = 'high') -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f'MatmulPrecisionHook: precision must be one of '
                              f'{", ".join(PRECISIONS)}, got {precision!r}')
        self.precision = precision

    def before_run(self, runner) -> None:
        torch.set_float32_matmul_precision(self.precision)

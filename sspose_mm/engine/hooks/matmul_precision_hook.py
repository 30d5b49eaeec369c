import torch
from mmengine.hooks import Hook
from mmpose.registry import HOOKS

from ...errors import ConfigError

PRECISIONS = ('highest', 'high', 'medium')


@HOOKS.register_module()
class MatmulPrecisionHook(Hook):
    """Set ``torch.set_float32_matmul_precision`` for the run.

    ``'high'`` lets float32 matrix multiplications on CUDA GPUs use
    TensorFloat32, as PyTorch already does for convolutions; ``'highest'``
    keeps full float32. mmengine's ``env_cfg`` has no such key, hence a
    hook; matrix products on the CPU are the same either way.

    Args:
        precision (str): ``'highest'``, ``'high'`` or ``'medium'``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, precision: str = 'high') -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f'MatmulPrecisionHook: precision must be one of '
                              f'{", ".join(PRECISIONS)}, got {precision!r}')
        self.precision = precision

    def before_run(self, runner) -> None:
        torch.set_float32_matmul_precision(self.precision)

"""Pictures of MAE reconstructions during pretraining."""
import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS
from torch import Tensor
from torchvision.utils import make_grid

from ...errors import ConfigError


@HOOKS.register_module()
class ReconstructionVisHook(Hook):
    """Show what the masked autoencoder reconstructs, every ``interval``
    training iterations and after the last.

    The first ``num_images`` images of the batch, masked with fixed
    (``seed``) noise so pictures compare over time, go to the visualizer's
    ``add_image('reconstruction', ...)``. Rows are images; columns: input,
    masked input, reconstruction, reconstruction with the visible patches
    pasted back. The model needs ``data_preprocessor`` (``mean``/``std``),
    ``num_tokens`` and ``reconstruct(images, noise)`` like ``SSposeMAE``.
    """

    priority = 'LOW'

    def __init__(self,
                 interval: int = 500,
                 num_images: int = 4,
                 seed: int = 0) -> None:
        if interval < 1 or num_images < 1:
            raise ConfigError('ReconstructionVisHook needs interval >= 1 and '
                              f'num_images >= 1, got {interval}, {num_images}')
        self.interval = interval
        self.num_images = num_images
        self.seed = seed

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if data_batch is not None and (self.every_n_train_iters(
                runner, self.interval) or self.is_last_train_iter(runner)):
            self.show(runner, data_batch)

    @master_only
    def show(self, runner, data_batch: dict) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        images = model.data_preprocessor(data_batch,
                                         False)['inputs'][:self.num_images]
        generator = torch.Generator().manual_seed(self.seed)
        noise = torch.rand(
            len(images), model.num_tokens,
            generator=generator).to(images.device)
        was_training = model.training
        model.eval()
        try:
            parts = model.reconstruct(images, noise)
        finally:
            model.train(was_training)
        columns = [
            images, parts['masked'], parts['reconstruction'], parts['pasted']
        ]
        picture = self.to_picture(columns, model.data_preprocessor.mean,
                                  model.data_preprocessor.std)
        runner.visualizer.add_image(
            'reconstruction', picture, step=runner.iter + 1)

    @staticmethod
    def to_picture(columns: list, mean: Tensor, std: Tensor) -> np.ndarray:
        """Normalised ``(B, 3, H, W)`` batches -> one ``uint8`` RGB grid,
        one row per image, one column per batch, 2-pixel white gaps."""
        cells = torch.stack(columns, 1).flatten(0, 1) * std + mean
        grid = make_grid(
            cells.clamp(0, 255), nrow=len(columns), padding=2, pad_value=255)
        # make_grid also pads the outer border.
        return grid[:, 2:-2, 2:-2].permute(1, 2, 0).byte().cpu().numpy()

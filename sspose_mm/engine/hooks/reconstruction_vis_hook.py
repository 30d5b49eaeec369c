"""Pictures of MAE reconstructions during pretraining."""
import numpy as np
import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS
from torch import Tensor

from ...errors import ConfigError


@HOOKS.register_module()
class ReconstructionVisHook(Hook):
    """Show what the masked autoencoder reconstructs, every few iterations.

    Takes the first ``num_images`` images of the current training batch,
    masks them with a fixed random mask (seeded, so pictures of one run are
    comparable over time) and sends one picture to the runner's visualizer
    (``add_image('reconstruction', ...)``; with the default local backend
    it lands in ``<work_dir>/<timestamp>/vis_data/vis_image/``). Rows are
    images; columns: input, masked input, reconstruction, reconstruction
    with the visible patches pasted back.

    The model must have ``data_preprocessor`` (with ``mean``/``std``),
    ``num_tokens`` and ``reconstruct(images, noise)`` like
    :class:`~sspose_mm.models.pretrainers.SSposeMAE`.

    Args:
        interval (int): Every this many training iterations, and after the
            last one.
        num_images (int): Rows of the picture (at most the batch size).
        seed (int): Seed of the masking noise.
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
        rows = []
        for row in zip(*columns):
            cells = [(image * std + mean).clamp(0, 255) for image in row]
            gap = torch.full_like(cells[0][:, :, :2], 255)
            rows.append(
                torch.cat(
                    [c for cell in cells for c in (cell, gap)][:-1], dim=2))
            rows.append(torch.full_like(rows[-1][:, :2], 255))
        grid = torch.cat(rows[:-1], dim=1)
        return grid.permute(1, 2, 0).byte().cpu().numpy()

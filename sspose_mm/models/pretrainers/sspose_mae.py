"""SSpose's MAE pretraining (ConvMAE-style hierarchical masking).

Random masking on the coarsest (token) grid; the same mask, block-upsampled,
masks the value path of every masked conv block of the finer stages; only
visible tokens enter the transformer; a light decoder fills in mask tokens
and predicts the pixels of every patch; the loss is the MSE on masked
patches, optionally against per-patch normalised pixels.
"""
import math
from typing import Dict, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel, xavier_init
from mmpose.registry import MODELS
from torch import Tensor, nn

from ...errors import ConfigError
from ..backbones.sspose_convvit import (SSposeConvViT,
                                        mae_sincos_position_embedding)
from ..utils import ViTBlock, gather_tokens


def random_masking(batch: int,
                   num_tokens: int,
                   mask_ratio: float,
                   noise: Optional[Tensor] = None,
                   device: Union[str, torch.device] = 'cpu'
                   ) -> Tuple[Tensor, Tensor, Tensor]:
    """MAE's per-sample random masking: of ``B`` samples of ``L`` tokens,
    keep the ``n = int(L * (1 - mask_ratio))`` of smallest ``(B, L)`` noise
    (``torch.rand`` when None); ``mask_ratio`` must be in ``[0, 1)``.
    Returns ``ids_keep (B, n)``, ``ids_restore (B, L)`` (position of each
    token in the shuffled order) and ``mask (B, L)`` (1 = removed).
    """
    if not 0 <= mask_ratio < 1:
        raise ConfigError(f'mask_ratio must be in [0, 1), got {mask_ratio}')
    if noise is None:
        noise = torch.rand(batch, num_tokens, device=device)
    num_keep = int(num_tokens * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(batch, num_tokens, device=noise.device)
    mask[:, :num_keep] = 0
    return (ids_shuffle[:, :num_keep], ids_restore,
            torch.gather(mask, 1, ids_restore))


def patchify(images: Tensor, patch: int) -> Tensor:
    """``(B, 3, H, W)`` -> ``(B, h*w, patch*patch*3)``, channel-last inside
    a patch (MAE's ``nchpwq->nhwpqc``); row-major patches."""
    b, c, h, w = images.shape
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    x = torch.einsum('nchpwq->nhwpqc', x)
    return x.reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(patches: Tensor, patch: int, grid: Tuple[int, int]) -> Tensor:
    """Inverse of :func:`patchify` for a ``grid = (h, w)`` of patches."""
    b, (h, w) = patches.shape[0], grid
    x = patches.reshape(b, h, w, patch, patch, -1)
    x = torch.einsum('nhwpqc->nchpwq', x)
    return x.reshape(b, -1, h * patch, w * patch)


def patch_statistics(patches: Tensor) -> Tuple[Tensor, Tensor]:
    """Mean and std ``(B, L, 1)`` of each patch, as MAE's ``norm_pix_loss``
    (unbiased variance, ``+1e-6`` inside the root)."""
    return (patches.mean(dim=-1, keepdim=True),
            (patches.var(dim=-1, keepdim=True) + 1e-6)**.5)


class MAEDecoder(nn.Module):
    """MAE's light decoder: embed visible tokens of width ``in_dims``, insert
    mask tokens, add a fixed sin-cos table of the token ``grid`` ``(h, w)``,
    ``depth`` transformer layers, predict ``out_dims`` (``p*p*3``) pixel
    values per patch."""

    def __init__(self,
                 grid: Tuple[int, int],
                 in_dims: int,
                 embed_dims: int,
                 depth: int,
                 num_heads: int,
                 out_dims: int,
                 mlp_ratio: float = 4.) -> None:
        super().__init__()
        self.embed = nn.Linear(in_dims, embed_dims)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(
            mae_sincos_position_embedding(*grid, embed_dims)[None],
            requires_grad=False)
        self.layers = nn.ModuleList(
            ViTBlock(embed_dims, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dims, eps=1e-6)
        self.pred = nn.Linear(embed_dims, out_dims)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                xavier_init(module, distribution='uniform')
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.attn.in_proj_weight)
            nn.init.zeros_(layer.attn.in_proj_bias)
        nn.init.normal_(self.mask_token, std=.02)

    def forward(self, latent: Tensor, ids_restore: Tensor) -> Tensor:
        """``(B, n, C_enc)`` visible tokens (shuffled order) and ``(B, L)``
        ``ids_restore`` -> ``(B, L, out_dims)`` per row-major patch."""
        x = self.embed(latent)
        b, n, c = x.shape
        masked = self.mask_token.expand(b, ids_restore.shape[1] - n, c)
        x = gather_tokens(torch.cat([x, masked], 1), ids_restore)
        x = x + self.pos_embed
        for layer in self.layers:
            x, _ = layer(x)
        return self.pred(self.norm(x))


@MODELS.register_module()
class SSposeMAE(BaseModel):
    """Masked-autoencoder pretraining of :class:`SSposeConvViT`.

    The encoder is the submodule ``backbone``, so its keys are exactly those
    of a pose model's backbone (``EncoderCheckpointHook`` writes them out).

    Args:
        backbone (dict): :class:`SSposeConvViT` config; its ``pos_embed``
            is kept fixed (MAE) unless ``trainable_pos_embed`` is set.
        mask_ratio (float): Fraction of tokens removed.
        hierarchical_mask (bool): Apply the upsampled token mask in the
            masked conv blocks of stages 1-2 (ConvMAE). False (an ablation)
            masks tokens only: masked pixels leak into visible tokens
            through the convs.
        decoder (dict): :class:`MAEDecoder` ``embed_dims``, ``depth``,
            ``num_heads``, ``mlp_ratio``. Defaults to ``dec512d8b``.
        norm_pix_loss (bool): Per-patch normalised pixel target (on in the
            official training command).
        data_preprocessor, init_cfg (dict, optional): As mmengine's.
    """

    def __init__(self,
                 backbone: dict,
                 mask_ratio: float = 0.75,
                 hierarchical_mask: bool = True,
                 decoder: Optional[dict] = None,
                 norm_pix_loss: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not 0 <= mask_ratio < 1:
            raise ConfigError(f'SSposeMAE.mask_ratio must be in [0, 1), got '
                              f'{mask_ratio}')
        backbone = dict(backbone)
        backbone.setdefault('trainable_pos_embed', False)
        self.backbone = MODELS.build(backbone)
        if not isinstance(self.backbone, SSposeConvViT):
            raise ConfigError('SSposeMAE.backbone must be an SSposeConvViT, '
                              f'got {type(self.backbone).__name__}')
        self.mask_ratio = mask_ratio
        self.hierarchical_mask = hierarchical_mask
        self.norm_pix_loss = norm_pix_loss
        self.patch = self.backbone.stride
        decoder = dict(
            dict(embed_dims=512, depth=8, num_heads=16, mlp_ratio=4.),
            **(decoder or {}))
        self.decoder = MAEDecoder(
            self.backbone.grid,
            self.backbone.embed_dims,
            out_dims=self.patch**2 * 3,
            **decoder)

    @property
    def num_tokens(self) -> int:
        return math.prod(self.backbone.grid)

    def forward_encoder(self,
                        images: Tensor,
                        noise: Optional[Tensor] = None
                        ) -> Tuple[Tensor, Tensor, Tensor]:
        """Mask (with ``(B, L)`` ``noise``, drawn when None) and encode
        normalised ``(B, 3, H, W)`` images into ``latent (B, n, C)`` (visible
        tokens in ``ids_keep`` order), ``mask (B, L)`` (1 = removed) and
        ``ids_restore (B, L)``."""
        ids_keep, ids_restore, mask = random_masking(
            len(images), self.num_tokens, self.mask_ratio, noise,
            images.device)
        visible = (1 - mask).reshape(len(images), *self.backbone.grid)
        latent = self.backbone.forward_tokens(
            images, ids_keep, visible if self.hierarchical_mask else None)
        return latent, mask, ids_restore

    def patch_loss(self, images: Tensor, pred: Tensor, mask: Tensor) -> Tensor:
        """Mean over removed patches of the per-patch pixel MSE."""
        target = patchify(images, self.patch)
        if self.norm_pix_loss:
            mean, std = patch_statistics(target)
            target = (target - mean) / std
        per_patch = ((pred - target)**2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[list] = None,
                mode: str = 'loss') -> Union[Dict[str, Tensor], Tensor]:
        """``mode='loss'``: ``{'loss': ...}``; ``'tensor'``: the decoder
        prediction ``(B, L, p*p*3)``; ``'predict'``: the reconstructed images
        ``(B, 3, H, W)`` (see :meth:`reconstruct`)."""
        if mode == 'predict':
            return self.reconstruct(inputs)['reconstruction']
        latent, mask, ids_restore = self.forward_encoder(inputs)
        pred = self.decoder(latent, ids_restore)
        if mode == 'tensor':
            return pred
        if mode == 'loss':
            return {'loss': self.patch_loss(inputs, pred, mask)}
        raise ValueError(f'SSposeMAE.forward: unknown mode {mode!r}')

    @torch.no_grad()
    def reconstruct(self,
                    images: Tensor,
                    noise: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Images for inspection, all ``(B, 3, H, W)`` in the normalised
        space of ``images``: ``masked`` (removed patches zeroed),
        ``reconstruction`` (every patch predicted) and ``pasted`` (visible
        patches from the input, removed ones predicted); with
        ``norm_pix_loss`` a predicted patch gets the true one's mean and std.
        """
        latent, mask, ids_restore = self.forward_encoder(images, noise)
        pred = self.decoder(latent, ids_restore)
        target = patchify(images, self.patch)
        if self.norm_pix_loss:
            mean, std = patch_statistics(target)
            pred = pred * std + mean
        removed = mask[..., None]
        grid = self.backbone.grid
        return dict(
            masked=unpatchify(target * (1 - removed), self.patch, grid),
            reconstruction=unpatchify(pred, self.patch, grid),
            pasted=unpatchify(target * (1 - removed) + pred * removed,
                              self.patch, grid))

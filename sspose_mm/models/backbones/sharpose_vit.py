"""SHaRPose's coarse-to-fine ViT (AAAI'24, arXiv 2312.10758).

One ViT looks twice at a person crop. The coarse pass sees the crop
downsampled by 2 with a quality token and keypoint tokens; the quality
predictor then decides per instance whether a fine pass is needed, and the
fine pass re-tokenises at full resolution only the coarse patches the
keypoint tokens attended to most (each becomes its 2x2 fine patches), keeps
the others as coarse tokens, and adds the coarse pass's patch features
(``reuse_block``, upsampled) to the fine patches. Both passes share the patch
embedding, the blocks and the final norm; each has its own position
embedding. Module and parameter names are those of the official
``AnxQ/sharpose`` checkpoints (``backbone.*``), so converted checkpoints load
by name.
"""
import logging
import math
import os.path as osp
from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmpose.registry import MODELS
from timm.layers import Mlp, PatchEmbed, trunc_normal_
from torch import Tensor, nn

from ...errors import CheckpointError, ConfigError
from ...fileio import safe_torch_load
from ...utils import strip_prefixes
from ..utils import ViTBlock, resize_position_embedding


class QualityPredictor(nn.Module):
    """Pose-quality regressor on the coarse pass's quality token.

    Mean over its tokens, LayerNorm, then Linear-GELU-Dropout twice and
    Linear(C, 1) followed by ``activation``. The official model ends in a
    GELU (upstream quirk 3: the "quality" is not bounded to [0, 1], which is
    why the 384x288 config's threshold 1.2 means "always refine");
    ``activation='sigmoid'`` bounds it.

    Args:
        embed_dims (int): Token dimension ``C``.
        drop_rate (float): Dropout after the hidden activations.
        activation (str): ``'gelu'`` (official) or ``'sigmoid'``.
    """

    def __init__(self,
                 embed_dims: int,
                 drop_rate: float = 0.,
                 activation: str = 'gelu') -> None:
        super().__init__()
        activations = {'gelu': nn.GELU, 'sigmoid': nn.Sigmoid}
        if activation not in activations:
            raise ConfigError(f'quality_activation must be one of '
                              f'{sorted(activations)}, got {activation!r}')
        self.norm = nn.LayerNorm(embed_dims)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims,
                      embed_dims), nn.GELU(), nn.Dropout(drop_rate),
            nn.Linear(embed_dims,
                      embed_dims), nn.GELU(), nn.Dropout(drop_rate),
            nn.Linear(embed_dims, 1), activations[activation]())

    def forward(self, tokens: Tensor) -> Tensor:
        """``(B, T, C)`` quality tokens -> ``(B,)`` predicted quality."""
        return self.mlp(self.norm(tokens.mean(dim=1)))[:, 0]


class SHaRPoseFeatures(NamedTuple):
    """What :class:`SHaRPoseViT` returns (B instances, K keypoints).

    Attributes:
        coarse_tokens (Tensor): ``(B, K, C)`` keypoint tokens of the coarse
            pass, after the final norm.
        fine_tokens (Tensor): ``(B, K, C)`` keypoint tokens of the fine pass
            for refined instances; the coarse tokens for the others.
        quality (Tensor): ``(B,)`` predicted pose quality.
        refine_mask (Tensor): ``(B,)`` bool, instances that went through the
            fine pass.
        patch_scores (Tensor): ``(B, N0)`` keypoint attention received by
            each coarse patch (row-major coarse grid), the ranking score.
        selected_patches (Tensor): ``(R, k)`` int64, the coarse patches
            re-tokenised at full resolution for the R refined instances in
            batch order, in descending score order.
    """

    coarse_tokens: Tensor
    fine_tokens: Tensor
    quality: Tensor
    refine_mask: Tensor
    patch_scores: Tensor
    selected_patches: Tensor


@MODELS.register_module()
class SHaRPoseViT(BaseModule):
    """SHaRPose backbone: a ViT run coarse, then sparsely fine.

    Forward pass (B instances, K keypoints, N0/N1 coarse/fine patches):

    1. Coarse: the input bilinearly resized to ``img_sizes[0]``, patch
       embedding + ``pos_embed_list[0]``; sequence [quality token, K keypoint
       tokens, N0 patches] through all blocks and ``norm``. The head-averaged
       attention of blocks ``depth//4 .. depth-1`` is accumulated as an EMA
       ``g = m*g + (1-m)*A`` (m = ``attention_momentum``, g from 0).
    2. Quality from the quality token; when the gate is on, only instances
       with quality below ``qp_threshold`` get step 3, the others keep their
       coarse keypoint tokens as fine tokens.
    3. Fine: each coarse patch is scored by the attention keypoint tokens pay
       to it in g; the top ``ceil(alpha*N0)`` are replaced by their 2x2 fine
       patches (patch embedding of the input at ``img_sizes[1]`` +
       ``pos_embed_list[1]`` + 2x nearest-upsampled ``reuse_block`` of the
       coarse output patches), the others stay coarse *input* embeddings.
       Sequence [K keypoint tokens (the learned ones again), 4k fine, N0-k
       coarse] through the same blocks and ``norm``.

    The gate is on when ``train_epoch`` is None (standalone testing) or in
    eval mode after ``qp_start_epoch`` (validation during training);
    training forwards refine every instance.
    :class:`~sspose_mm.engine.hooks.SHaRPoseQualityHook` sets ``train_epoch``
    (1-based, as the official epoch hook); without it training forwards are
    gated too (the official rule), and the first one logs a warning.

    Upstream quirks reproduced by default, each with a switch:

    - ``score_all_keypoints=False``: the official ranking sums the attention
      rows of keypoint tokens 0..K-2 only (a ``1:K`` slice in the [quality,
      keypoints, patches] layout skips the last keypoint); True uses all K.
    - ``quality_activation='gelu'``: see :class:`QualityPredictor`.
    - ``reuse_mlp_ratio`` (None = ``mlp_ratio``): the reuse MLP's hidden
      width, ``4C`` in the official model.

    Args:
        img_sizes (Sequence[Sequence[int]]): ``(H, W)`` of the coarse and the
            fine pass; the fine token grid must be twice the coarse one.
            Defaults to ``((128, 96), (256, 192))``.
        num_keypoints (int): K. Defaults to 17.
        patch_size (int): Patch size of both passes. Defaults to 16.
        embed_dims (int): Token dimension ``C``. Defaults to 768.
        depth (int): Number of blocks. Defaults to 12.
        num_heads (int): Attention heads. Defaults to 12.
        mlp_ratio (float): MLP hidden width / ``C``. Defaults to 4.
        qkv_bias (bool): Bias of the ``qkv`` projections. Defaults to True.
        drop_rate (float): Dropout in blocks and the quality predictor.
        attn_drop_rate (float): Dropout on attention weights.
        drop_path_rate (float): Stochastic depth of the last block (linear
            from 0). Defaults to 0.1.
        alpha (float): Share of coarse patches refined. Defaults to 0.5.
        qp_threshold (float): Refine instances with lower predicted quality.
            Defaults to 0.99.
        qp_start_epoch (int): Validation is gated only in later epochs.
        attention_momentum (float): EMA momentum of the attention
            accumulation. Defaults to 0.99.
        score_all_keypoints (bool): Fix of the ranking quirk (see above).
        quality_activation (str): ``'gelu'`` (official) or ``'sigmoid'``.
        reuse_mlp_ratio (float, optional): Hidden width / ``C`` of the reuse
            MLP; None means ``mlp_ratio``.
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH)`` loads MAE/timm ViT weights with the position
            embedding interpolated to both grids (see
            :func:`load_vit_pretrained`); otherwise the official init
            (trunc-normal Linear, unit LayerNorm, zero tokens and position
            embeddings).
    """

    def __init__(self,
                 img_sizes: Sequence[Sequence[int]] = ((128, 96), (256, 192)),
                 num_keypoints: int = 17,
                 patch_size: int = 16,
                 embed_dims: int = 768,
                 depth: int = 12,
                 num_heads: int = 12,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 alpha: float = 0.5,
                 qp_threshold: float = 0.99,
                 qp_start_epoch: int = 0,
                 attention_momentum: float = 0.99,
                 score_all_keypoints: bool = False,
                 quality_activation: str = 'gelu',
                 reuse_mlp_ratio: Optional[float] = None,
                 init_cfg: Optional[dict] = None) -> None:
        self.pretrained = None
        if init_cfg is not None:
            if init_cfg.get('type') != 'Pretrained' or 'checkpoint' not in (
                    init_cfg):
                raise ConfigError(
                    'SHaRPoseViT init_cfg must be None or dict(type='
                    f'"Pretrained", checkpoint=PATH), got {init_cfg!r}')
            self.pretrained = init_cfg['checkpoint']
        super().__init__(init_cfg=None)
        self.grids = self._token_grids(img_sizes, patch_size)
        if not 0 < alpha <= 1:
            raise ConfigError(f'SHaRPoseViT alpha must be in (0, 1], got '
                              f'{alpha}')
        self.img_sizes = tuple(tuple(size) for size in img_sizes)
        self.num_keypoints = num_keypoints
        self.depth = depth
        self.alpha = alpha
        self.qp_threshold = qp_threshold
        self.qp_start_epoch = qp_start_epoch
        self.attention_momentum = attention_momentum
        self.score_all_keypoints = score_all_keypoints
        self.train_epoch: Optional[int] = None
        self._warned_no_train_epoch = False
        (h0, w0), (h1, w1) = self.grids
        # ceil of the float product alpha * N0, as the official code
        # (0.4*48 -> 20); N0 first, since alpha*h0*w0 rounds differently
        # for some grids (0.05*12*10 = 6.000000000000001 -> 7, not 6).
        self.num_selected = math.ceil(alpha * (h0 * w0))

        self.patch_embed = PatchEmbed(
            img_size=None,
            patch_size=patch_size,
            in_chans=3,
            embed_dim=embed_dims,
            strict_img_size=False)
        self.pos_embed_list = nn.ParameterList([
            nn.Parameter(torch.zeros(1, h * w, embed_dims))
            for h, w in self.grids
        ])
        self.keypoint_tokens = nn.Parameter(
            torch.zeros(1, num_keypoints, embed_dims))
        self.quality_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList([
            ViTBlock(
                embed_dims,
                num_heads,
                mlp_ratio,
                qkv_bias,
                drop_rate,
                attn_drop_rate,
                rate,
                layout='timm',
                norm_eps=1e-5) for rate in rates
        ])
        self.norm = nn.LayerNorm(embed_dims)
        reuse_hidden = int(embed_dims * (reuse_mlp_ratio or mlp_ratio))
        self.reuse_block = nn.Sequential(
            nn.LayerNorm(embed_dims), Mlp(embed_dims, reuse_hidden))
        self.quality_predictor = QualityPredictor(embed_dims, drop_rate,
                                                  quality_activation)

    @staticmethod
    def _token_grids(img_sizes: Sequence[Sequence[int]], patch_size: int
                     ) -> Tuple[Tuple[int, int], Tuple[int, int]]:
        if len(img_sizes) != 2 or any(len(size) != 2 for size in img_sizes):
            raise ConfigError('SHaRPoseViT img_sizes must be two (H, W) '
                              f'pairs (coarse, fine), got {img_sizes!r}')
        if any(side % patch_size for size in img_sizes for side in size):
            raise ConfigError(f'SHaRPoseViT img_sizes {img_sizes!r} must be '
                              f'multiples of patch_size {patch_size}')
        coarse, fine = ((h // patch_size, w // patch_size)
                        for h, w in img_sizes)
        if fine != (2 * coarse[0], 2 * coarse[1]):
            raise ConfigError(
                f'SHaRPoseViT needs a fine token grid twice the coarse one '
                f'(each coarse patch covers 2x2 fine patches); img_sizes '
                f'{img_sizes!r} give {coarse} and {fine}')
        return coarse, fine

    @property
    def coarse_sequence_length(self) -> int:
        """Tokens of the coarse pass: quality, keypoints, N0 patches."""
        h0, w0 = self.grids[0]
        return 1 + self.num_keypoints + h0 * w0

    @property
    def fine_sequence_length(self) -> int:
        """Tokens of the fine pass: K keypoints, 4k fine, N0-k coarse."""
        h0, w0 = self.grids[0]
        return (self.num_keypoints + 4 * self.num_selected + h0 * w0 -
                self.num_selected)

    @property
    def keypoint_attention_layout(self) -> dict:
        """Where the keypoint tokens and the image patches sit in the
        recorded attention maps of a forward pass, for attention figures
        (:mod:`sspose_mm.apis.attention_figure`): its first ``depth`` maps
        are the coarse pass's, over [quality, K keypoints, h0 x w0 patches
        row-major]. The fine pass mixes fine and coarse patches, so no
        image grid can show its maps."""
        h0, w0 = self.grids[0]
        K = self.num_keypoints
        return dict(
            num_maps=self.depth,
            grid=(h0, w0),
            query_tokens=list(range(1, 1 + K)),
            patch_tokens=(1 + K, 1 + K + h0 * w0))

    def gate_enabled(self) -> bool:
        """Whether the quality predictor decides which instances refine."""
        return self.train_epoch is None or (
            not self.training and self.train_epoch > self.qp_start_epoch)

    def _warn_if_training_without_epoch(self) -> None:
        """Training with ``train_epoch`` None gates training forwards (the
        official rule, meant for standalone testing); that is silent and
        almost never intended, so say it once per model."""
        if (not self.training or self.train_epoch is not None
                or self._warned_no_train_epoch):
            return
        self._warned_no_train_epoch = True
        print_log(
            'SHaRPoseViT: a training forward ran with train_epoch None (no '
            "custom_hooks=[dict(type='SHaRPoseQualityHook')] in the config), "
            'so the quality gate is on during training: instances it trusts '
            'skip the fine pass (DDP may then stop on unused parameters) and '
            'the head never switches its quality loss on. Add '
            'SHaRPoseQualityHook, which sets train_epoch every epoch.',
            logger='current',
            level=logging.WARNING)

    def init_weights(self) -> None:
        """The official init, then the MAE/ViT weights if configured."""
        self.apply(_init_official)
        if self.pretrained is not None:
            load_vit_pretrained(self, self.pretrained)
        self._is_init = True

    def _embed(self, images: Tensor, stage: int) -> Tensor:
        """Patch embedding + position embedding of one pass, ``(B, N, C)``."""
        if tuple(images.shape[-2:]) != self.img_sizes[stage]:
            images = F.interpolate(
                images,
                size=self.img_sizes[stage],
                mode='bilinear',
                align_corners=False)
        return self.patch_embed(images) + self.pos_embed_list[stage]

    def forward(self, inputs: Tensor) -> SHaRPoseFeatures:
        """
        Args:
            inputs (Tensor): ``(B, 3, H, W)`` normalised crops (resized to
                each pass's ``img_sizes`` when different).

        Returns:
            SHaRPoseFeatures: keypoint tokens of both passes and the gate's
            inputs and decisions.
        """
        self._warn_if_training_without_epoch()
        B = inputs.shape[0]
        K = self.num_keypoints
        coarse_embed = self._embed(inputs, 0)
        x, accumulated = self._coarse_pass(coarse_embed)
        quality_token, coarse_tokens, coarse_patches = x.split(
            [1, K, x.shape[1] - 1 - K], dim=1)
        quality = self.quality_predictor(quality_token)
        rows = slice(1, K + 1) if self.score_all_keypoints else slice(1, K)
        patch_scores = accumulated[:, rows, K + 1:].sum(dim=1)

        if self.gate_enabled():
            refine_mask = quality < self.qp_threshold
        else:
            refine_mask = torch.ones(B, dtype=torch.bool, device=x.device)
        refined = refine_mask.nonzero()[:, 0]
        order = patch_scores[refined].argsort(dim=1, descending=True)
        selected, unselected = order.split(
            [self.num_selected, order.shape[1] - self.num_selected], dim=1)
        if len(refined) == 0:
            fine_tokens = coarse_tokens
        else:
            refined_tokens = self._fine_pass(inputs[refined],
                                             coarse_embed[refined],
                                             coarse_patches[refined], selected,
                                             unselected)
            fine_tokens = coarse_tokens.index_put((refined, ), refined_tokens)
        return SHaRPoseFeatures(coarse_tokens, fine_tokens, quality,
                                refine_mask, patch_scores, selected)

    def _coarse_pass(self, coarse_embed: Tensor) -> Tuple[Tensor, Tensor]:
        """Blocks and norm on [quality, keypoints, patches]; returns the
        ``(B, 1+K+N0, C)`` output and the attention EMA ``(B, L, L)``."""
        B = coarse_embed.shape[0]
        x = torch.cat([
            self.quality_token.expand(B, -1, -1),
            self.keypoint_tokens.expand(B, -1, -1), coarse_embed
        ],
                      dim=1)
        accumulated = torch.zeros((), device=x.device)
        m = self.attention_momentum
        for i, block in enumerate(self.blocks):
            accumulate = i >= self.depth // 4
            x, attention = block(x, need_weights=accumulate)
            if accumulate:
                # Only ranks patches: no gradient through the selection.
                accumulated = m * accumulated + (1 - m) * attention.detach()
        return self.norm(x), accumulated

    def fine_patch_index(self, selected: Tensor) -> Tensor:
        """Coarse patch indices ``(R, k)`` -> their fine patches ``(R, 4k)``
        (row-major fine grid): all k top-left, then top-right, bottom-left,
        bottom-right, as the official ``get_index``."""
        w0 = self.grids[0][1]
        w1 = self.grids[1][1]
        top_left = (selected // w0) * 2 * w1 + (selected % w0) * 2
        return torch.cat([top_left + offset for offset in (0, 1, w1, w1 + 1)],
                         dim=1)

    def _fine_pass(self, inputs: Tensor, coarse_embed: Tensor,
                   coarse_patches: Tensor, selected: Tensor,
                   unselected: Tensor) -> Tensor:
        """Keypoint tokens ``(R, K, C)`` of the sparse full-resolution pass of
        the R refined instances (inputs as in :meth:`forward`)."""
        R, _, C = coarse_embed.shape
        (h0, w0), (h1, w1) = self.grids
        reused = self.reuse_block(coarse_patches).transpose(1, 2).reshape(
            R, C, h0, w0)
        reused = F.interpolate(reused, size=(h1, w1), mode='nearest')
        fine_embed = self._embed(inputs, 1) + reused.flatten(2).transpose(1, 2)

        def gather(tokens: Tensor, index: Tensor) -> Tensor:
            return tokens.gather(1, index[..., None].expand(-1, -1, C))

        x = torch.cat([
            self.keypoint_tokens.expand(R, -1, -1),
            gather(fine_embed, self.fine_patch_index(selected)),
            gather(coarse_embed, unselected)
        ],
                      dim=1)
        for block in self.blocks:
            x, _ = block(x)
        return self.norm(x[:, :self.num_keypoints])


def _init_official(module: nn.Module) -> None:
    """trunc-normal(0.02) Linear weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _square_grid(pos_embed: Tensor, path: str) -> Tuple[Tensor, int]:
    """A ``(1, [1 +] S*S, C)`` ViT table without its class-token row, and
    ``S``."""
    length = pos_embed.shape[1]
    for prefix in (0, 1):
        side = math.isqrt(length - prefix)
        if side * side == length - prefix:
            return pos_embed[:, prefix:], side
    raise CheckpointError(
        f'{path}: pos_embed has {length} positions, neither a square grid '
        'nor a class token plus a square grid.')


def load_vit_pretrained(backbone: SHaRPoseViT, path: str) -> None:
    """Load MAE/timm ViT weights into a :class:`SHaRPoseViT`.

    As the official loader: the state dict under ``model``/``state_dict``
    (or plain), ``module.``/``backbone.`` prefixes removed, keypoint tokens
    dropped (they are learned from zero), ``pos_embed`` without its class
    row bicubically resized to both token grids; the rest loads by name,
    non-strictly (tokens, reuse block and quality predictor are new; MAE's
    decoder is ignored). What did not load is logged.

    Raises:
        CheckpointError: The file is missing or unreadable, or nothing of it
            fits the backbone.
    """
    if not osp.isfile(path):
        raise CheckpointError(
            f'SHaRPoseViT pretrained checkpoint {path} does not exist (set '
            'model.backbone.init_cfg.checkpoint to the MAE weights, or None '
            'to train from scratch).')
    loaded = safe_torch_load(path, map_location='cpu')
    for wrapper in ('model', 'state_dict'):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
            break
    state_dict = strip_prefixes(loaded, ('module.', 'backbone.'))
    state_dict.pop('keypoint_tokens', None)
    pos_embed = state_dict.pop('pos_embed', None)
    if pos_embed is not None:
        pos_embed, side = _square_grid(pos_embed.float(), path)
        for stage, grid in enumerate(backbone.grids):
            state_dict[f'pos_embed_list.{stage}'] = resize_position_embedding(
                pos_embed, (side, side), grid)
    own = backbone.state_dict()
    mismatched = [
        k for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise CheckpointError(f'{path}: shapes differ from the backbone for ' +
                              ', '.join(f'{k} {tuple(state_dict[k].shape)} vs '
                                        f'{tuple(own[k].shape)}'
                                        for k in mismatched[:5]))
    result = backbone.load_state_dict(state_dict, strict=False)
    loaded_keys = len(own) - len(result.missing_keys)
    if loaded_keys == 0:
        raise CheckpointError(f'{path}: none of its keys is a SHaRPoseViT '
                              'parameter; is it a ViT checkpoint?')
    print_log(
        f'SHaRPoseViT: loaded {loaded_keys} tensors from {path}; '
        f'new: {", ".join(result.missing_keys) or "none"}; ignored: '
        f'{len(result.unexpected_keys)} keys',
        logger='current')

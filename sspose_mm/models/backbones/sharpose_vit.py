"""SHaRPose's coarse-to-fine ViT (AAAI'24, arXiv 2312.10758): one ViT looks
at a person crop coarsely, then, where a quality predictor asks for it, at
full resolution on the coarse patches the keypoint tokens attended to most.
Parameter names are those of the official ``AnxQ/sharpose`` checkpoints
(``backbone.*``), so converted checkpoints load by name.
"""
import logging
import math
import os.path as osp
from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule, constant_init, trunc_normal_init
from mmpose.registry import MODELS
from timm.layers import Mlp, PatchEmbed
from torch import Tensor, nn

from ...errors import CheckpointError, ConfigError
from ...fileio import safe_torch_load
from ...utils import (key_differences, listing, plain_state_dict,
                      strip_prefixes, timm_vit_names)
from ..utils import ViTBlock, fit_position_table, gather_tokens


class QualityPredictor(nn.Module):
    """Pose-quality predictor on a pass's quality token: mean over the
    tokens, LayerNorm, (Linear-GELU-Dropout) x 2, Linear, activation.

    Official: ``Linear(C, 1)`` and a GELU, so the "quality" is unbounded
    (upstream quirk 3: the 384x288 config's threshold 1.2 means "always
    refine"); ``activation='sigmoid'`` bounds it. ``classify`` (official
    ``qp_abs``): ``Linear(C, 2)`` and a softmax replacing the activation,
    the quality being the probability of class 1 ("good enough").
    """

    def __init__(self,
                 embed_dims: int,
                 drop_rate: float = 0.,
                 activation: str = 'gelu',
                 classify: bool = False) -> None:
        super().__init__()
        activations = {'gelu': nn.GELU, 'sigmoid': nn.Sigmoid}
        if activation not in activations:
            raise ConfigError(f'quality_activation must be one of '
                              f'{sorted(activations)}, got {activation!r}')
        if classify and activation != 'gelu':
            raise ConfigError(
                'SHaRPoseViT qp_abs=True makes the quality predictor a '
                'two-class softmax; leave quality_activation at "gelu", got '
                f'{activation!r}')
        self.norm = nn.LayerNorm(embed_dims)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims,
                      embed_dims), nn.GELU(), nn.Dropout(drop_rate),
            nn.Linear(embed_dims, embed_dims), nn.GELU(),
            nn.Dropout(drop_rate), nn.Linear(embed_dims, 2 if classify else 1),
            nn.Softmax(dim=-1) if classify else activations[activation]())

    def logits(self, tokens: Tensor) -> Tensor:
        """``(B, T, C)`` quality tokens -> ``(B, 1)`` (regression) or
        ``(B, 2)`` (classifier) outputs before the last activation."""
        return self.mlp[:-1](self.norm(tokens.mean(dim=1)))

    def activate(self, logits: Tensor) -> Tensor:
        """:meth:`logits` -> ``(B,)`` predicted quality."""
        return self.mlp[-1](logits)[:, -1]

    def forward(self, tokens: Tensor) -> Tensor:
        """``(B, T, C)`` quality tokens -> ``(B,)`` predicted quality."""
        return self.activate(self.logits(tokens))


class SHaRPoseFeatures(NamedTuple):
    """What :class:`SHaRPoseViT` returns (B instances, K keypoints, R
    refined).

    Attributes:
        coarse_tokens (Tensor): ``(B, K, C)`` coarse-pass keypoint tokens,
            after the final norm.
        fine_tokens (Tensor): ``(B, K, C)``, the fine pass's for refined
            instances, the coarse ones for the others.
        quality (Tensor): ``(B,)`` predicted pose quality.
        refine_mask (Tensor): ``(B,)`` bool, the refined instances.
        patch_scores (Tensor): ``(B, N0)`` keypoint attention received by
            each coarse patch (row-major), the ranking score.
        selected_patches (Tensor): ``(R, k)`` int64, the refined coarse
            patches in batch order, by descending score (random with
            ``patch_selection='random'``).
        quality_logits (Tensor, optional): ``(B, 1)``, or ``(B, 2)`` with
            ``qp_abs``: ``quality`` before the last activation.
        fine_quality (Tensor, optional): ``(B,)`` with ``replace_oks``, else
            None: the fine pass's quality for refined instances, ``quality``
            for the others.
        fine_quality_logits (Tensor, optional): Its logits, or None.
    """

    coarse_tokens: Tensor
    fine_tokens: Tensor
    quality: Tensor
    refine_mask: Tensor
    patch_scores: Tensor
    selected_patches: Tensor
    quality_logits: Optional[Tensor] = None
    fine_quality: Optional[Tensor] = None
    fine_quality_logits: Optional[Tensor] = None


@MODELS.register_module()
class SHaRPoseViT(BaseModule):
    """SHaRPose backbone: a ViT run coarse, then sparsely fine.

    Forward pass (B instances, K keypoints, N0/N1 coarse/fine patches):

    1. Coarse: the input bilinearly resized to ``img_sizes[0]``, patch
       embedding + ``pos_embed_list[0]``; [quality token, K keypoint tokens,
       N0 patches] through all blocks and ``norm``, the head-averaged
       attention of blocks ``depth//4 ..`` accumulated as an EMA
       ``g = m*g + (1-m)*A`` (m = ``attention_momentum``, g from 0).
    2. Quality from the quality token; with the gate on, only instances
       below ``qp_threshold`` get step 3, the others keep their coarse
       keypoint tokens.
    3. Fine: the top ``ceil(alpha*N0)`` coarse patches by the attention of
       the keypoint tokens in g become their 2x2 fine patches (patch
       embedding at ``img_sizes[1]`` + ``pos_embed_list[1]`` + the coarse
       output patches through ``reuse_block``, 2x nearest-upsampled), the
       others stay coarse *input* embeddings; [K keypoint tokens (the
       learned ones again), 4k fine, N0-k coarse] through the same blocks
       and ``norm``.

    The gate is on when ``train_epoch`` is None (standalone testing) or in
    eval mode after ``qp_start_epoch``; training forwards refine every
    instance. :class:`~sspose_mm.engine.hooks.SHaRPoseQualityHook` sets
    ``train_epoch`` (1-based, as the official epoch hook); training without
    it gates training forwards too (the official rule) and logs a warning.

    docs/sharpose.md details the options; upstream quirks are reproduced by
    default: ``score_all_keypoints=False`` ranks by keypoint rows 0..K-2
    only (the official ``1:K`` slice), ``quality_activation='gelu'``
    (:class:`QualityPredictor`), ``reuse_mlp_ratio`` None (``mlp_ratio``).

    Args:
        img_sizes (Sequence[Sequence[int]]): ``(H, W)`` of the coarse and the
            fine pass; the fine token grid must be twice the coarse one.
        drop_rate (float): Dropout in blocks and the quality predictor.
        drop_path_rate (float): Stochastic depth of the last block (linear
            from 0).
        alpha (float): Share of coarse patches refined.
        qp_threshold (float): Refine instances of lower predicted quality.
        attention_momentum (float): ``m`` of the attention EMA; 0 ranks by
            the last block alone.
        reuse_mlp_ratio (float, optional): Hidden width / ``C`` of the reuse
            MLP (official ``4``).
        replace_oks (bool): The quality token (the learned parameter again)
            also enters the fine pass, first; the same predictor reads it
            into ``fine_quality``, which :class:`SHaRPoseHead` trains and
            reports as keypoint scores.
        qp_abs (bool): Two-class quality predictor; the gate compares the
            probability of "good enough" with ``qp_threshold``.
        feature_reuse (bool): Add the coarse pass's features to the fine
            patches (ablation: False, no ``reuse_block``).
        patch_selection (str): ``'attention'`` or ``'random'`` (ablation: as
            many patches drawn uniformly per instance and forward).
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint=PATH)`` loads MAE/timm ViT weights
            (:func:`load_vit_pretrained`); otherwise the official init
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
                 replace_oks: bool = False,
                 qp_abs: bool = False,
                 feature_reuse: bool = True,
                 patch_selection: str = 'attention',
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
        if patch_selection not in ('attention', 'random'):
            raise ConfigError('SHaRPoseViT patch_selection must be '
                              '"attention" or "random", got '
                              f'{patch_selection!r}')
        self.img_sizes = tuple(tuple(size) for size in img_sizes)
        self.num_keypoints = num_keypoints
        self.depth = depth
        self.alpha = alpha
        self.qp_threshold = qp_threshold
        self.qp_start_epoch = qp_start_epoch
        self.attention_momentum = attention_momentum
        self.score_all_keypoints = score_all_keypoints
        self.replace_oks = replace_oks
        self.patch_selection = patch_selection
        self.train_epoch: Optional[int] = None
        self._warned_no_train_epoch = False
        (h0, w0), (h1, w1) = self.grids
        # ceil of the float product alpha * N0, as the official code
        # (0.4*48 -> 20); N0 first, since alpha*h0*w0 rounds differently
        # for some grids (0.05*12*10 = 6.000000000000001 -> 7, not 6).
        self.num_selected = math.ceil(alpha * (h0 * w0))

        self.patch_embed = PatchEmbed(
            None, patch_size, 3, embed_dims, strict_img_size=False)
        self.pos_embed_list = nn.ParameterList([
            nn.Parameter(torch.zeros(1, h * w, embed_dims))
            for h, w in self.grids
        ])
        self.keypoint_tokens = nn.Parameter(
            torch.zeros(1, num_keypoints, embed_dims))
        self.quality_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.blocks = nn.ModuleList(
            ViTBlock(embed_dims, num_heads, mlp_ratio, qkv_bias, drop_rate,
                     attn_drop_rate, rate, 'timm', 1e-5)
            for rate in torch.linspace(0, drop_path_rate, depth).tolist())
        self.norm = nn.LayerNorm(embed_dims)
        # Not built without reuse: an unused module would hold parameters
        # that DDP waits for.
        self.reuse_block = None
        if feature_reuse:
            reuse_hidden = int(embed_dims * (reuse_mlp_ratio or mlp_ratio))
            self.reuse_block = nn.Sequential(
                nn.LayerNorm(embed_dims), Mlp(embed_dims, reuse_hidden))
        self.quality_predictor = QualityPredictor(embed_dims, drop_rate,
                                                  quality_activation, qp_abs)

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
        """Tokens of the fine pass: [quality with ``replace_oks``], K
        keypoints, 4k fine, N0-k coarse."""
        h0, w0 = self.grids[0]
        return (int(self.replace_oks) + self.num_keypoints +
                4 * self.num_selected + h0 * w0 - self.num_selected)

    @property
    def keypoint_attention_layout(self) -> dict:
        """Where keypoint tokens and patches sit in a forward pass's recorded
        attention maps, for :mod:`sspose_mm.apis.attention_figure`: the
        first ``depth`` maps are the coarse pass's, over [quality, K
        keypoints, h0 x w0 patches row-major]; the fine pass mixes fine and
        coarse patches, so no image grid can show its maps."""
        h0, w0 = self.grids[0]
        K = self.num_keypoints
        return dict(
            num_maps=self.depth,
            grid=(h0, w0),
            query_tokens=list(range(1, 1 + K)),
            patch_tokens=(1 + K, 1 + K + h0 * w0))

    def _warn_if_training_without_epoch(self) -> None:
        """Gated training forwards (``train_epoch`` None, the official rule
        for standalone testing) are almost never intended: say so once."""
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
                images, self.img_sizes[stage], mode='bilinear')
        return self.patch_embed(images) + self.pos_embed_list[stage]

    def forward(self, inputs: Tensor) -> SHaRPoseFeatures:
        """``(B, 3, H, W)`` normalised crops (resized to each pass's
        ``img_sizes``) -> both passes' keypoint tokens and the gate's inputs
        and decisions."""
        self._warn_if_training_without_epoch()
        K = self.num_keypoints
        coarse_embed = self._embed(inputs, 0)
        x, accumulated = self._coarse_pass(coarse_embed)
        quality_token, coarse_tokens, coarse_patches = x.split(
            [1, K, x.shape[1] - 1 - K], dim=1)
        quality_logits = self.quality_predictor.logits(quality_token)
        quality = self.quality_predictor.activate(quality_logits)
        rows = slice(1, K + 1) if self.score_all_keypoints else slice(1, K)
        patch_scores = accumulated[:, rows, K + 1:].sum(dim=1)

        gated = self.train_epoch is None or (
            not self.training and self.train_epoch > self.qp_start_epoch)
        refine_mask = (
            quality < self.qp_threshold if gated else torch.ones_like(
                quality, dtype=torch.bool))
        refined = refine_mask.nonzero()[:, 0]
        order = self._rank_patches(patch_scores[refined])
        selected, unselected = order.split(
            [self.num_selected, order.shape[1] - self.num_selected], dim=1)
        fine_tokens, fine_logits = coarse_tokens, quality_logits
        if len(refined):
            refined_tokens, refined_logits = self._fine_pass(
                inputs[refined], coarse_embed[refined],
                coarse_patches[refined], selected, unselected)
            fine_tokens = coarse_tokens.index_put((refined, ), refined_tokens)
            if self.replace_oks:
                fine_logits = quality_logits.index_put((refined, ),
                                                       refined_logits)
        fine_quality = fine_quality_logits = None
        if self.replace_oks:
            fine_quality_logits = fine_logits
            fine_quality = self.quality_predictor.activate(fine_logits)
        return SHaRPoseFeatures(coarse_tokens, fine_tokens, quality,
                                refine_mask, patch_scores, selected,
                                quality_logits, fine_quality,
                                fine_quality_logits)

    def _rank_patches(self, patch_scores: Tensor) -> Tensor:
        """``(R, N0)`` scores -> ``(R, N0)`` coarse patch indices, those to
        refine first."""
        if self.patch_selection == 'random':
            # The ablation's baseline: as many patches, chosen blindly.
            return torch.rand(
                patch_scores.shape, device=patch_scores.device).argsort(dim=1)
        return patch_scores.argsort(dim=1, descending=True)

    def _lead_tokens(self, batch: int, quality: bool) -> List[Tensor]:
        """[quality token,] keypoint tokens, ``(batch, 1 or K, C)`` each."""
        tokens = [self.quality_token] * quality + [self.keypoint_tokens]
        return [token.expand(batch, -1, -1) for token in tokens]

    def _coarse_pass(self, coarse_embed: Tensor) -> Tuple[Tensor, Tensor]:
        """Blocks and norm on [quality, keypoints, patches]; returns the
        ``(B, 1+K+N0, C)`` output and the attention EMA ``(B, L, L)``."""
        x = torch.cat(
            self._lead_tokens(len(coarse_embed), True) + [coarse_embed], dim=1)
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
        w0, w1 = self.grids[0][1], self.grids[1][1]
        top_left = (selected // w0) * 2 * w1 + (selected % w0) * 2
        return torch.cat([top_left + offset for offset in (0, 1, w1, w1 + 1)],
                         dim=1)

    def _fine_pass(self, inputs: Tensor, coarse_embed: Tensor,
                   coarse_patches: Tensor, selected: Tensor,
                   unselected: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Keypoint tokens ``(R, K, C)`` of the sparse full-resolution pass of
        the R refined instances, and with ``replace_oks`` its quality logits
        (else None)."""
        R, _, C = coarse_embed.shape
        (h0, w0), (h1, w1) = self.grids
        fine_embed = self._embed(inputs, 1)
        if self.reuse_block is not None:
            reused = self.reuse_block(coarse_patches).transpose(1, 2).reshape(
                R, C, h0, w0)
            reused = F.interpolate(reused, size=(h1, w1), mode='nearest')
            fine_embed = fine_embed + reused.flatten(2).transpose(1, 2)

        lead = int(self.replace_oks)
        x = torch.cat(
            self._lead_tokens(R, self.replace_oks) + [
                gather_tokens(fine_embed, self.fine_patch_index(selected)),
                gather_tokens(coarse_embed, unselected)
            ],
            dim=1)
        for block in self.blocks:
            x, _ = block(x)
        x = self.norm(x[:, :lead + self.num_keypoints])
        quality_logits = self.quality_predictor.logits(
            x[:, :1]) if lead else None
        return x[:, lead:], quality_logits


def _init_official(module: nn.Module) -> None:
    """trunc-normal(0.02) Linear weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        trunc_normal_init(module, std=.02)
    elif isinstance(module, nn.LayerNorm):
        constant_init(module, 1)


def load_vit_pretrained(backbone: SHaRPoseViT, path: str) -> None:
    """Load MAE/ViT weights into a :class:`SHaRPoseViT`.

    As the official loader: ``module.``/``backbone.`` prefixes removed,
    keypoint tokens dropped (learned from zero), ``pos_embed`` without its
    class row bicubically resized to both token grids, the rest loaded by
    name non-strictly (MAE's decoder is ignored). Beyond it, mmpretrain's
    ViT names (MMPose's ViTPose MAE weights) are read as timm's, and a file
    that leaves a block or the patch embedding random stops the run. The
    log line counts loaded, missing and unexpected tensors.

    Raises:
        CheckpointError: The file is missing, unreadable or no state dict of
            tensors (:func:`~sspose_mm.utils.plain_state_dict`), its
            ``pos_embed`` lies on no grid, a shape differs, or a block or
            patch-embedding weight is not in it.
    """
    if not osp.isfile(path):
        raise CheckpointError(
            f'SHaRPoseViT pretrained checkpoint {path} does not exist (set '
            'model.backbone.init_cfg.checkpoint to the MAE weights, or None '
            'to train from scratch).')
    loaded = plain_state_dict(safe_torch_load(path, map_location='cpu'), path)
    state_dict = timm_vit_names(
        strip_prefixes(loaded, ('module.', 'backbone.')))
    state_dict.pop('keypoint_tokens', None)
    pos_embed = state_dict.pop('pos_embed', None)
    if pos_embed is not None:
        for stage, grid in enumerate(backbone.grids):
            state_dict[f'pos_embed_list.{stage}'] = fit_position_table(
                pos_embed.float(), grid, f'{path}: pos_embed', True)
    own = backbone.state_dict()
    unexpected, missing = key_differences(state_dict, own)
    mismatched = [
        k for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise CheckpointError(f'{path}: shapes differ from the backbone for ' +
                              ', '.join(f'{k} {tuple(state_dict[k].shape)} vs '
                                        f'{tuple(own[k].shape)}'
                                        for k in mismatched[:5]))
    # The pretrained ViT itself: without it the run would train from random
    # blocks while the log says "loaded".
    vit_missing = [
        k for k in missing if k.startswith(('blocks.', 'patch_embed.'))
    ]
    if vit_missing:
        raise CheckpointError(
            f'{path}: {len(vit_missing)} weights of the {backbone.depth} '
            'transformer blocks and the patch embedding are not in it (e.g. '
            f'{", ".join(vit_missing[:3])}), so they would stay random; its '
            f'keys read as {", ".join(sorted(state_dict)[:3]) or "nothing"}'
            '. Expected a ViT with as many blocks, named as MAE/timm '
            '(blocks.0.norm1.weight) or mmpretrain (layers.0.ln1.weight).')
    backbone.load_state_dict(state_dict, strict=False)
    print_log(
        f'SHaRPoseViT: {path}: loaded {len(own) - len(missing)} tensors, '
        f'missing {len(missing)} (new: {", ".join(missing) or "none"}), '
        f'unexpected {len(unexpected)} (ignored'
        f'{": " + listing(unexpected, 5) if unexpected else ""})',
        logger='current')

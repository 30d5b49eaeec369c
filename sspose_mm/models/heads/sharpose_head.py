"""SHaRPose's head: keypoint tokens -> heatmaps, and the quality loss."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.evaluation.functional import pose_pck_accuracy
from mmpose.models.heads import HeatmapHead
from mmpose.registry import MODELS
from mmpose.utils.tensor_utils import to_numpy
from mmpose.utils.typing import (ConfigType, OptConfigType, OptSampleList,
                                 Predictions)
from torch import Tensor, nn

from ...errors import ConfigError
from ..backbones.sharpose_vit import SHaRPoseFeatures


@MODELS.register_module()
class SHaRPoseHead(HeatmapHead):
    """Token-to-heatmap MLP for both SHaRPose passes, and the quality loss.

    One MLP, shared by keypoints and passes, turns each keypoint token into
    its heatmap: ``LN(C) -> Linear(C, h*w)`` when ``C >= h*w/4``, else
    ``LN(C) -> Linear(C, h*w/2) -> GELU -> LN -> Linear(h*w/2, h*w)``,
    reshaped row-major to ``(h, w)``. :class:`HeatmapHead` gives the loss
    module, codec, flip test and decoding; its (de)convolutions are not built
    (there is no feature map).

    Losses: the heatmap loss of the coarse and of the fine heatmaps against
    the same target, and ``loss_quality = quality_loss_weight * MSE(quality,
    OKS)``, OKS being each instance's :meth:`instance_oks` between the
    argmaxes of its coarse and of its target heatmaps (instances without a
    weighted keypoint left out). It is multiplied by 0 (gradients still reach
    every parameter) until ``train_epoch > qp_start_epoch``, which
    :class:`~sspose_mm.engine.hooks.SHaRPoseQualityHook` sets; not detached,
    it trains the whole backbone through the quality token.

    Upstream quirk, reproduced by default: ``oks_swap_heatmap_axes=True``
    maps heatmap offsets to pixels with ``box_w / heatmap_h`` for x and
    ``box_h / heatmap_w`` for y (the official code passes ``[H, W]`` where
    ``[W, H]`` is expected), also in the PCK normaliser; False does not.

    Official options, off by default as upstream; the spec names them without
    formulas, so each takes this reading (docs/sharpose.md lists them):

    - ``qp_type='pck'``: the quality target is the instance's
      :meth:`instance_pck` instead of its OKS.
    - ``qp_abs`` (also on the backbone): with its two-class predictor,
      ``loss_quality = quality_loss_weight * CE(logits, target >=
      qp_abs_threshold)``: class 1 ("good enough, no refinement") when the
      coarse pose reaches the threshold (by default the configs' gate's).
    - ``replace_oks`` (also on the backbone): its ``fine_quality`` is
      trained like the coarse one against the quality target of the *fine*
      heatmaps (``loss_quality_fine``, refined instances only) and replaces
      every keypoint score at prediction.
    - ``loss_distill``: the fine pass teaches the coarse one, refined
      instances only, the fine tokens detached: ``'mse'``:
      ``distill_loss_weight * MSE(coarse tokens, fine tokens)``; ``'kl'``:
      ``distill_loss_weight * KL(softmax(fine) || softmax(coarse))`` over
      each token's C channels, averaged over tokens.

    Args:
        in_channels (int): Token dimension ``C``.
        out_channels (int): Number of keypoints K.
        heatmap_size (Sequence[int]): ``(w, h)`` as the codec's.
        loss (dict): Heatmap loss; the default with target weights equals
            the official JointsMSELoss for binary weights.
        decoder (dict, optional): Codec for decoding (``UDPHeatmap``).
        metainfo (dict, optional): Dataset meta (e.g. ``dict(from_file=
            'configs/_base_/datasets/coco.py')``) giving the K OKS
            ``sigmas``; needed for an OKS quality loss.
        qp_start_epoch (int): Last epoch (1-based) without quality loss.
        pck_threshold (float): Fraction of the heatmap size (MMPose's).
        init_cfg (dict, optional): None: HeatmapHead's, which initialises
            only convolutions and batch norms, so the MLP keeps PyTorch's
            init, as the official head.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 heatmap_size: Sequence[int],
                 loss: ConfigType = dict(
                     type='KeypointMSELoss', use_target_weight=True),
                 decoder: OptConfigType = None,
                 metainfo: Optional[dict] = None,
                 quality_loss_weight: float = 0.03,
                 qp_start_epoch: int = 0,
                 oks_swap_heatmap_axes: bool = True,
                 qp_type: str = 'oks',
                 pck_threshold: float = 0.05,
                 qp_abs: bool = False,
                 qp_abs_threshold: float = 0.99,
                 replace_oks: bool = False,
                 loss_distill: Optional[str] = None,
                 distill_loss_weight: float = 1.,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(
            in_channels,
            out_channels,
            deconv_out_channels=None,
            conv_out_channels=None,
            final_layer=None,
            loss=loss,
            decoder=decoder,
            init_cfg=init_cfg)
        if len(heatmap_size) != 2:
            raise ConfigError(f'SHaRPoseHead heatmap_size must be (w, h), '
                              f'got {heatmap_size!r}')
        self.heatmap_size = tuple(heatmap_size)
        w, h = self.heatmap_size
        if in_channels >= h * w // 4:
            self.heatmap_mlp = nn.Sequential(
                nn.LayerNorm(in_channels), nn.Linear(in_channels, h * w))
        else:
            hidden = h * w // 2
            self.heatmap_mlp = nn.Sequential(
                nn.LayerNorm(in_channels), nn.Linear(in_channels, hidden),
                nn.GELU(), nn.LayerNorm(hidden), nn.Linear(hidden, h * w))
        self.quality_loss_weight = quality_loss_weight
        self.qp_start_epoch = qp_start_epoch
        self.oks_swap_heatmap_axes = oks_swap_heatmap_axes
        if qp_type not in ('oks', 'pck'):
            raise ConfigError(f'SHaRPoseHead qp_type must be "oks" or "pck", '
                              f'got {qp_type!r}')
        if loss_distill not in (None, 'kl', 'mse'):
            raise ConfigError(f'SHaRPoseHead loss_distill must be None, "kl" '
                              f'or "mse", got {loss_distill!r}')
        self.qp_type = qp_type
        self.pck_threshold = pck_threshold
        self.qp_abs = qp_abs
        self.qp_abs_threshold = qp_abs_threshold
        self.replace_oks = replace_oks
        self.loss_distill = loss_distill
        self.distill_loss_weight = distill_loss_weight
        self.train_epoch: Optional[int] = None
        # A buffer moves with the model: no host copy (GPU wait) per loss.
        # Not persistent: checkpoints keep their keys.
        sigmas = None
        if metainfo is not None:
            sigmas = parse_pose_metainfo(dict(metainfo)).get('sigmas')
            if sigmas is None or len(sigmas) != out_channels:
                raise ConfigError(
                    f'SHaRPoseHead metainfo {metainfo!r} must give '
                    f'{out_channels} OKS sigmas (one per keypoint), got '
                    f'{None if sigmas is None else len(sigmas)}')
            sigmas = torch.as_tensor(np.asarray(sigmas), dtype=torch.float32)
        elif quality_loss_weight > 0 and qp_type == 'oks':
            raise ConfigError(
                'SHaRPoseHead needs metainfo with OKS sigmas for its quality '
                "loss, e.g. metainfo=dict(from_file='configs/_base_/datasets"
                "/coco.py'), or quality_loss_weight=0")
        self.register_buffer('oks_sigmas', sigmas, persistent=False)

    def tokens_to_heatmaps(self, tokens: Tensor) -> Tensor:
        """``(B, K, C)`` keypoint tokens -> ``(B, K, h, w)`` heatmaps."""
        if tokens.shape[1] != self.out_channels:
            # The MLP is per token, so a mismatch would not fail by itself.
            raise ConfigError(
                f'SHaRPoseHead out_channels is {self.out_channels} but the '
                f'backbone has {tokens.shape[1]} keypoint tokens; set '
                'model.backbone.num_keypoints and model.head.out_channels to '
                'the same K')
        w, h = self.heatmap_size
        return self.heatmap_mlp(tokens).unflatten(-1, (h, w))

    def forward_stages(self, feats: SHaRPoseFeatures) -> List[Tensor]:
        """Coarse and fine heatmaps, each ``(B, K, h, w)``."""
        return [
            self.tokens_to_heatmaps(t)
            for t in (feats.coarse_tokens, feats.fine_tokens)
        ]

    def forward(self, feats: SHaRPoseFeatures) -> Tensor:
        """Fine (final) heatmaps ``(B, K, h, w)``, used for inference."""
        return self.tokens_to_heatmaps(feats.fine_tokens)

    def _check_backbone_options(self, feats: SHaRPoseFeatures) -> None:
        """The options the head and the backbone must share agree."""
        logits = feats.quality_logits
        backbone = dict(
            qp_abs=logits is not None and logits.shape[1] == 2,
            replace_oks=feats.fine_quality is not None)
        for option, value in backbone.items():
            if getattr(self, option) != value:
                raise ConfigError(
                    f'SHaRPoseHead {option}={getattr(self, option)} but the '
                    f'backbone runs with {option}={value}; set '
                    f'model.backbone.{option} and model.head.{option} alike')

    def loss(self,
             feats: SHaRPoseFeatures,
             batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """``loss_kpt_coarse``, ``loss_kpt_fine``, ``loss_quality``,
        ``loss_quality_fine`` (``replace_oks``), ``loss_distill``
        (``loss_distill``), and for the log ``oks_coarse`` (or ``pck_coarse``:
        mean quality target), ``refine_rate`` and, unless
        ``train_cfg.compute_acc`` is False, ``acc_pose`` (fine heatmaps)."""
        self._check_backbone_options(feats)
        coarse, fine = self.forward_stages(feats)
        gt_heatmaps = torch.stack(
            [d.gt_fields.heatmaps for d in batch_data_samples])
        keypoint_weights = torch.cat([
            d.gt_instance_labels.keypoint_weights for d in batch_data_samples
        ])
        losses = dict(
            loss_kpt_coarse=self.loss_module(coarse, gt_heatmaps,
                                             keypoint_weights),
            loss_kpt_fine=self.loss_module(fine, gt_heatmaps,
                                           keypoint_weights))
        # The crop box in pixels; its centre cancels in the OKS offsets.
        box_sizes = torch.as_tensor(
            np.stack([d.metainfo['input_scale'] for d in batch_data_samples]),
            dtype=torch.float32,
            device=coarse.device).reshape(-1, 2)
        target, valid = self.quality_target(coarse.detach(), gt_heatmaps,
                                            keypoint_weights, box_sizes)
        losses['loss_quality'] = self._quality_loss(feats.quality,
                                                    feats.quality_logits,
                                                    target, valid)
        losses[f'{self.qp_type}_coarse'] = (
            target[valid].mean() if valid.any() else target.new_zeros(()))
        if self.replace_oks:
            fine_target, fine_valid = self.quality_target(
                fine.detach(), gt_heatmaps, keypoint_weights, box_sizes)
            losses['loss_quality_fine'] = self._quality_loss(
                feats.fine_quality, feats.fine_quality_logits, fine_target,
                fine_valid & feats.refine_mask)
        if self.loss_distill is not None:
            losses['loss_distill'] = self._distill_loss(feats)
        losses['refine_rate'] = feats.refine_mask.float().mean()
        if train_cfg.get('compute_acc', True):
            _, avg_acc, _ = pose_pck_accuracy(
                to_numpy(fine), to_numpy(gt_heatmaps),
                to_numpy(keypoint_weights) > 0)
            losses['acc_pose'] = torch.tensor(avg_acc, device=fine.device)
        return losses

    def _quality_loss(self, quality: Tensor, logits: Optional[Tensor],
                      target: Tensor, valid: Tensor) -> Tensor:
        """Weighted MSE (``qp_abs``: two-class cross-entropy) of ``(B,)``
        predictions and targets, mean over ``valid``; 0 before its epoch."""
        epoch = self.train_epoch
        active = epoch is not None and epoch > self.qp_start_epoch
        factor = self.quality_loss_weight if active else 0.
        if self.qp_abs:
            per_instance = F.cross_entropy(
                logits, (target >= self.qp_abs_threshold).long(),
                reduction='none')
        else:
            per_instance = (quality - target)**2
        # Mean over valid instances; the 0-weighted sum keeps the graph
        # (and DDP's gradients) when none is valid.
        return factor * (
            per_instance[valid].mean() if valid.any() else 0. *
            per_instance.sum())

    def _distill_loss(self, feats: SHaRPoseFeatures) -> Tensor:
        """``loss_distill`` from the fine (teacher, detached) to the coarse
        keypoint tokens of the refined instances."""
        refined = feats.refine_mask
        if not refined.any():
            return 0. * feats.coarse_tokens.sum()
        student = feats.coarse_tokens[refined].flatten(0, 1)
        teacher = feats.fine_tokens[refined].detach().flatten(0, 1)
        if self.loss_distill == 'mse':
            loss = F.mse_loss(student, teacher)
        else:
            loss = F.kl_div(
                student.log_softmax(dim=-1),
                teacher.log_softmax(dim=-1),
                reduction='batchmean',
                log_target=True)
        return self.distill_loss_weight * loss

    def predict(self,
                feats,
                batch_data_samples: OptSampleList,
                test_cfg: ConfigType = {}) -> Predictions:
        """:meth:`HeatmapHead.predict`; ``replace_oks`` sets every keypoint
        score to the instance's fine-pass quality (of the unflipped crop)."""
        preds = super().predict(feats, batch_data_samples, test_cfg)
        if not self.replace_oks:
            return preds
        original = feats[0] if test_cfg.get('flip_test', False) else feats
        self._check_backbone_options(original)
        instances = preds[0] if isinstance(preds, tuple) else preds
        for instance, quality in zip(instances,
                                     to_numpy(original.fine_quality)):
            instance.keypoint_scores = np.full_like(instance.keypoint_scores,
                                                    quality)
        return preds

    def quality_target(self, heatmaps: Tensor, target_heatmaps: Tensor,
                       keypoint_weights: Tensor,
                       box_sizes: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-instance OKS or PCK (``qp_type``), as :meth:`instance_oks`."""
        if self.qp_type == 'pck':
            return self.instance_pck(heatmaps, target_heatmaps,
                                     keypoint_weights)
        return self.instance_oks(heatmaps, target_heatmaps, keypoint_weights,
                                 box_sizes)

    def instance_pck(self, heatmaps: Tensor, target_heatmaps: Tensor,
                     keypoint_weights: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-instance PCK of heatmap argmaxes against target argmaxes.

        MMPose's ``pose_pck_accuracy`` (the official head's logged accuracy)
        for each instance alone: offsets as :meth:`instance_oks` divided by
        the heatmap size, the share of weighted keypoints closer than
        ``pck_threshold``. Returns as :meth:`instance_oks`.
        """
        offsets, size = self._argmax_offsets(heatmaps, target_heatmaps)
        return _weighted_mean((offsets / size).norm(dim=-1)
                              < self.pck_threshold, keypoint_weights)

    def instance_oks(self, heatmaps: Tensor, target_heatmaps: Tensor,
                     keypoint_weights: Tensor,
                     box_sizes: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-instance OKS of heatmap argmaxes against target argmaxes.

        As the official ``eval_utils``: integer argmax positions (-1 for
        maps whose maximum is not positive), offsets scaled to pixels of the
        ``box_sizes`` (the padded crop box, whose area is the OKS area),
        COCO's ``exp(-d^2 / (2 * area * (2 sigma)^2))`` averaged over
        keypoints with non-zero weight. ``(B, K, h, w)`` heatmaps, ``(B,
        K)`` weights and ``(B, 2)`` boxes ``(w, h)`` in pixels -> OKS ``(B,)``
        and the ``(B,)`` bool mask of instances with a weighted keypoint.
        """
        offsets, size = self._argmax_offsets(heatmaps, target_heatmaps)
        offsets = offsets * (box_sizes / size)[:, None]
        area = box_sizes.prod(dim=1, keepdim=True)
        variances = (2 * self.oks_sigmas)**2
        # np.spacing(1) as COCO's computeOks, for zero-area boxes.
        e = offsets.pow(2).sum(-1) / variances / (area + 2.220446e-16) / 2
        return _weighted_mean(torch.exp(-e), keypoint_weights)

    def _argmax_offsets(self, heatmaps: Tensor,
                        target_heatmaps: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, K, 2)`` argmax offsets in heatmap pixels and the ``(2,)``
        heatmap size dividing ``(x, y)``: ``(h, w)`` with the axes quirk."""
        w, h = self.heatmap_size
        size = heatmaps.new_tensor(
            [h, w] if self.oks_swap_heatmap_axes else [w, h])
        return _argmax_xy(heatmaps) - _argmax_xy(target_heatmaps), size


def _weighted_mean(values: Tensor,
                   keypoint_weights: Tensor) -> Tuple[Tensor, Tensor]:
    """Mean of ``(B, K)`` values over keypoints of non-zero weight, and the
    ``(B,)`` mask of instances with any."""
    visible = keypoint_weights > 0
    count = visible.sum(dim=1)
    return (values * visible).sum(dim=1) / count.clamp(min=1), count > 0


def _argmax_xy(heatmaps: Tensor) -> Tensor:
    """``(B, K, h, w)`` -> ``(B, K, 2)`` float ``(x, y)`` of each maximum;
    -1 where the maximum is not positive (MMPose 0.x ``_get_max_preds``)."""
    B, K, _, w = heatmaps.shape
    maxima, index = heatmaps.flatten(2).max(dim=2)
    xy = torch.stack([index % w, index // w], dim=-1).float()
    return torch.where((maxima > 0)[..., None], xy, xy.new_full((), -1.))

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

    Every keypoint token becomes its own heatmap through one MLP shared by
    keypoints and passes: ``LN(C) -> Linear(C, h*w)`` when ``C >= h*w/4``,
    else ``LN(C) -> Linear(C, h*w/2) -> GELU -> LN -> Linear(h*w/2, h*w)``,
    reshaped row-major to ``(h, w)``. MMPose's :class:`HeatmapHead` gives
    the loss module, the codec, flip testing and decoding; its
    deconvolution/convolution layers are not built (there is no feature map).
    :meth:`forward` returns the fine (final) heatmaps, what inference uses;
    :meth:`forward_stages` both.

    Losses: the heatmap loss on the coarse and on the fine heatmaps against
    the same target (``loss_kpt_coarse``, ``loss_kpt_fine``), and
    ``loss_quality = quality_loss_weight * MSE(quality, OKS)``, where OKS is
    each instance's object keypoint similarity between the argmax of its
    coarse heatmaps and the argmax of its target heatmaps (in image pixels,
    averaged over keypoints with non-zero weight; instances without any are
    left out). The quality loss is multiplied by 0 (so gradients still
    reach every parameter) until ``train_epoch > qp_start_epoch``;
    :class:`~sspose_mm.engine.hooks.SHaRPoseQualityHook` sets ``train_epoch``.
    Not detached: it trains the whole backbone through the quality token.

    Upstream quirk reproduced by default, with a switch:
    ``oks_swap_heatmap_axes=True``: the official OKS target maps heatmap
    offsets to pixels with ``box_w / heatmap_h`` for x and ``box_h /
    heatmap_w`` for y (the heatmap size passed as ``[H, W]`` to a function
    expecting ``[W, H]``); False uses ``box_w / heatmap_w`` and
    ``box_h / heatmap_h``. The same switch orders the PCK normaliser.

    Official options, off by default as upstream. The spec names them but
    not their formulas; each takes the reading given here (docs/sharpose.md
    lists them):

    - ``qp_type='pck'``: the quality target is each instance's PCK instead
      of its OKS: the share of weighted keypoints whose heatmap argmax lies
      within ``pck_threshold`` of the target's argmax, offsets divided by
      the heatmap size (MMPose's ``pose_pck_accuracy``, per instance; the
      official head logs that function as its accuracy).
    - ``qp_abs``: with the backbone's two-class predictor, the quality loss
      is ``quality_loss_weight * CE(logits, target >= qp_abs_threshold)``:
      class 1 ("good enough, no refinement") when the coarse pose's quality
      target reaches the threshold.
    - ``replace_oks``: the backbone's ``fine_quality`` is trained like the
      coarse one against the quality target of the *fine* heatmaps
      (``loss_quality_fine``, refined instances only) and replaces every
      keypoint score at prediction (of the unflipped crop when flip
      testing).
    - ``loss_distill``: the fine pass teaches the coarse one:
      ``'mse'``: ``distill_loss_weight * MSE(coarse tokens, fine tokens)``;
      ``'kl'``: ``distill_loss_weight * KL(softmax(fine) || softmax(coarse))``
      over each token's C channels, averaged over tokens; the fine tokens
      are detached (the teacher), refined instances only.

    Args:
        in_channels (int): Token dimension ``C``.
        out_channels (int): Number of keypoints K.
        heatmap_size (Sequence[int]): ``(w, h)`` as the codec's.
        loss (dict): Heatmap loss. Defaults to ``KeypointMSELoss`` with
            target weights (equal to the official JointsMSELoss for binary
            weights).
        decoder (dict, optional): Codec for decoding (``UDPHeatmap``).
        metainfo (dict, optional): Dataset meta (e.g. ``dict(from_file=
            'configs/_base_/datasets/coco.py')``) giving the K OKS
            ``sigmas``; needed when ``quality_loss_weight > 0``.
        quality_loss_weight (float): Defaults to 0.03.
        qp_start_epoch (int): Last epoch (1-based) without quality loss.
        oks_swap_heatmap_axes (bool): Reproduce the quirk above.
        qp_type (str): Quality target, ``'oks'`` (official) or ``'pck'``.
        pck_threshold (float): PCK distance threshold, as a fraction of the
            heatmap size. Defaults to 0.05 (MMPose's).
        qp_abs (bool): Two-class quality loss; needs the backbone's
            ``qp_abs``.
        qp_abs_threshold (float): Quality target from which an instance is
            class 1. Defaults to 0.99, the configs' gate threshold.
        replace_oks (bool): Train ``fine_quality`` and report it as the
            keypoint scores; needs the backbone's ``replace_oks``.
        loss_distill (str, optional): ``'kl'`` or ``'mse'``; None (official
            default) adds no distillation loss.
        distill_loss_weight (float): Defaults to 1.
        init_cfg (dict, optional): None means HeatmapHead's default, which
            only initialises convolutions and batch norms: the MLP keeps
            PyTorch's default init, as the official head.
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
        # A buffer, so it moves with the model: no copy from the host (and
        # no wait for the GPU) in every loss. Not persistent: checkpoints
        # keep their keys.
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
            self.tokens_to_heatmaps(feats.coarse_tokens),
            self.tokens_to_heatmaps(feats.fine_tokens)
        ]

    def forward(self, feats: SHaRPoseFeatures) -> Tensor:
        """Fine (final) heatmaps ``(B, K, h, w)``, used for inference."""
        return self.tokens_to_heatmaps(feats.fine_tokens)

    def quality_loss_active(self) -> bool:
        return (self.train_epoch is not None
                and self.train_epoch > self.qp_start_epoch)

    def _check_backbone_options(self, feats: SHaRPoseFeatures) -> None:
        """The options the head and the backbone must share agree."""
        logits = feats.quality_logits
        two_class = logits is not None and logits.shape[1] == 2
        if self.qp_abs != two_class:
            raise ConfigError(
                f'SHaRPoseHead qp_abs={self.qp_abs} but the backbone\'s '
                f'quality predictor is {"" if two_class else "not "}the '
                'two-class one; set model.backbone.qp_abs and '
                'model.head.qp_abs alike')
        fine_quality = feats.fine_quality is not None
        if self.replace_oks != fine_quality:
            raise ConfigError(
                f'SHaRPoseHead replace_oks={self.replace_oks} but the '
                f'backbone {"does" if fine_quality else "does not"} predict a '
                'fine-pass quality; set model.backbone.replace_oks and '
                'model.head.replace_oks alike')

    def loss(self,
             feats: SHaRPoseFeatures,
             batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """Heatmap losses of both passes and the quality loss.

        Returns:
            dict: ``loss_kpt_coarse``, ``loss_kpt_fine``, ``loss_quality``,
            ``loss_quality_fine`` (``replace_oks``), ``loss_distill``
            (``loss_distill``), and for the log ``oks_coarse`` (or
            ``pck_coarse``: mean quality target), ``refine_rate`` and,
            unless ``train_cfg.compute_acc`` is False, ``acc_pose`` (fine
            heatmaps).
        """
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
                output=to_numpy(fine),
                target=to_numpy(gt_heatmaps),
                mask=to_numpy(keypoint_weights) > 0)
            losses['acc_pose'] = torch.tensor(avg_acc, device=fine.device)
        return losses

    def _quality_loss(self, quality: Tensor, logits: Optional[Tensor],
                      target: Tensor, valid: Tensor) -> Tensor:
        """Weighted MSE (or with ``qp_abs`` two-class cross-entropy) of
        ``(B,)`` predictions against ``(B,)`` targets, averaged over the
        ``valid`` instances; 0 before the quality loss's epoch."""
        factor = self.quality_loss_weight if self.quality_loss_active() else 0.
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
        """:meth:`HeatmapHead.predict`; with ``replace_oks`` every keypoint
        score of an instance is its predicted fine-pass quality (of the
        unflipped crop when flip testing: the flip only refines the
        heatmaps)."""
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

        MMPose's ``pose_pck_accuracy`` for each instance alone: argmax
        positions as :meth:`instance_oks`, offsets divided by the heatmap
        size (``(h, w)`` for ``(x, y)`` as that function, or ``(w, h)``
        without the axes quirk), the share of keypoints with non-zero weight
        closer than ``pck_threshold``.

        Returns:
            tuple: PCK ``(B,)`` and a ``(B,)`` bool mask of instances with at
            least one weighted keypoint.
        """
        w, h = self.heatmap_size
        size = heatmaps.new_tensor(
            [h, w] if self.oks_swap_heatmap_axes else [w, h])
        distances = ((_argmax_xy(heatmaps) - _argmax_xy(target_heatmaps)) /
                     size).norm(dim=-1)
        visible = keypoint_weights > 0
        count = visible.sum(dim=1)
        close = ((distances < self.pck_threshold) & visible).sum(dim=1)
        return close / count.clamp(min=1), count > 0

    def instance_oks(self, heatmaps: Tensor, target_heatmaps: Tensor,
                     keypoint_weights: Tensor,
                     box_sizes: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-instance OKS of heatmap argmaxes against target argmaxes.

        As the official ``eval_utils``: integer argmax positions (those of
        maps whose maximum is not positive set to -1), offsets scaled to
        pixels of the ``box_sizes`` (the padded crop box, whose area is the
        OKS area), COCO's ``exp(-d^2 / (2 * area * (2 sigma)^2))`` averaged
        over keypoints with non-zero weight.

        Args:
            heatmaps, target_heatmaps (Tensor): ``(B, K, h, w)``.
            keypoint_weights (Tensor): ``(B, K)``.
            box_sizes (Tensor): ``(B, 2)`` crop box ``(w, h)`` in pixels.

        Returns:
            tuple: OKS ``(B,)`` and a ``(B,)`` bool mask of instances with at
            least one weighted keypoint.
        """
        w, h = self.heatmap_size
        per_pixel = box_sizes / (
            box_sizes.new_tensor(
                [h, w] if self.oks_swap_heatmap_axes else [w, h]))
        offsets = (_argmax_xy(heatmaps) -
                   _argmax_xy(target_heatmaps)) * per_pixel[:, None]
        area = box_sizes.prod(dim=1, keepdim=True)
        variances = (2 * self.oks_sigmas)**2
        # np.spacing(1) as COCO's computeOks, for zero-area boxes.
        e = offsets.pow(2).sum(-1) / variances / (area + 2.220446e-16) / 2
        visible = keypoint_weights > 0
        count = visible.sum(dim=1)
        oks = (torch.exp(-e) * visible).sum(dim=1) / count.clamp(min=1)
        return oks, count > 0


def _argmax_xy(heatmaps: Tensor) -> Tensor:
    """``(B, K, h, w)`` -> ``(B, K, 2)`` float ``(x, y)`` of each maximum;
    -1 where the maximum is not positive (MMPose 0.x ``_get_max_preds``)."""
    B, K, _, w = heatmaps.shape
    maxima, index = heatmaps.flatten(2).max(dim=2)
    xy = torch.stack([index % w, index // w], dim=-1).float()
    return torch.where((maxima > 0)[..., None], xy, xy.new_full((), -1.))

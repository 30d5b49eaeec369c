"""HigherHRNet's two-resolution associative-embedding head."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmpose.models.backbones.resnet import BasicBlock
from mmpose.models.heads import AssociativeEmbeddingHead
from mmpose.registry import MODELS
from mmpose.utils.typing import (ConfigType, Features, OptConfigType,
                                 OptSampleList, Predictions)
from torch import Tensor, nn


@MODELS.register_module()
class HigherHRNetHead(AssociativeEmbeddingHead):
    """Heatmaps and tags at 1/4, heatmaps again at 1/2 of the input.

    From `HigherHRNet`_ (as HigherPose uses it): a 1x1 conv gives ``K``
    heatmaps and ``K * tag_dim`` tags from the ``(B, C, H/4, W/4)`` feature;
    the feature and that output, concatenated, go through a transposed conv
    (k4, s2) + BN + ReLU and ``num_upsample_blocks`` basic residual blocks to
    ``(B, upsample_channels, H/2, W/2)``; a 1x1 conv gives the 1/2 heatmaps.
    Flip test, resizing (``test_cfg.restore_heatmap_size``) and grouping are
    MMPose's :class:`~mmpose.models.heads.AssociativeEmbeddingHead`
    ``predict``; the losses (:meth:`loss`) are masked heatmap MSE at both
    resolutions and the tag loss at 1/4, all averaged over the images of the
    batch as in HigherHRNet (MMPose's tag loss sums over them).

    Args:
        in_channels (int): Feature channels ``C``.
        num_keypoints (int): Keypoints ``K``.
        tag_dim (int): Tag dimension per keypoint.
        keypoint_loss (dict): Heatmap loss of both resolutions, called with
            the heatmap masks.
        tag_loss (dict): The default's weight 0.001 is HigherHRNet's pull
            and push factor (its push term is already halved).
        decoder (dict, optional): Grouping codec, usually
            ``AssociativeEmbedding``-like at the input size.
        init_cfg (dict, optional): Defaults to HeatmapHead's Normal(0.001)
            convolutions, constant-1 BN.

    .. _`HigherHRNet`: https://arxiv.org/abs/1908.10357
    """

    def __init__(self,
                 in_channels: int,
                 num_keypoints: int,
                 tag_dim: int = 1,
                 upsample_channels: int = 32,
                 num_upsample_blocks: int = 4,
                 keypoint_loss: ConfigType = dict(type='KeypointMSELoss'),
                 tag_loss: ConfigType = dict(
                     type='BatchedAssociativeEmbeddingLoss',
                     loss_weight=0.001),
                 decoder: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(
            in_channels=in_channels,
            num_keypoints=num_keypoints,
            tag_dim=tag_dim,
            deconv_out_channels=None,
            keypoint_loss=keypoint_loss,
            tag_loss=tag_loss,
            decoder=decoder,
            init_cfg=init_cfg)
        c = upsample_channels
        quarter = in_channels + num_keypoints * (1 + tag_dim)
        self.upsample_layers = nn.Sequential(
            nn.ConvTranspose2d(quarter, c, 4, 2, 1, bias=False),
            nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            *[BasicBlock(c, c) for _ in range(num_upsample_blocks)])
        self.highres_final_layer = nn.Conv2d(c, num_keypoints, 1)

    def forward_stages(self, feats: Features) -> Tuple[Tensor, Tensor, Tensor]:
        """Heatmaps ``(B, K, H/4, W/4)``, tags ``(B, K*tag_dim, H/4, W/4)``
        and heatmaps ``(B, K, H/2, W/2)`` from the last feature
        ``(B, C, H/4, W/4)``."""
        heatmaps, tags = super().forward(feats)
        upsampled = self.upsample_layers(
            torch.cat((feats[-1], heatmaps, tags), dim=1))
        return heatmaps, tags, self.highres_final_layer(upsampled)

    def forward(self, feats: Features) -> Tuple[Tensor, Tensor]:
        """What grouping uses: heatmaps ``(B, K, H/2, W/2)``, the mean of
        both resolutions (HigherHRNet's aggregation), and tags
        ``(B, K*tag_dim, H/2, W/2)``; 1/4 maps upsampled bilinearly
        (``align_corners=False``)."""
        quarter, tags, half = self.forward_stages(feats)
        size = half.shape[2:]
        quarter = F.interpolate(
            quarter, size, mode='bilinear', align_corners=False)
        tags = F.interpolate(tags, size, mode='bilinear', align_corners=False)
        return (quarter + half) / 2, tags

    def predict(self,
                feats: Features,
                batch_data_samples: OptSampleList,
                test_cfg: ConfigType = {}) -> Predictions:
        """MMPose's prediction, also without flip testing: then MMPose's
        ``BottomupPoseEstimator`` passes a tuple of features, which its AE
        head refuses with an AssertionError (it wants a list)."""
        if not (test_cfg.get('flip_test', False)
                or test_cfg.get('multiscale_test', False)):
            feats = list(feats)
        return super().predict(feats, batch_data_samples, test_cfg)

    def loss(self,
             feats: Features,
             batch_data_samples: OptSampleList,
             train_cfg: Optional[ConfigType] = None) -> dict:
        """``loss_kpt`` (1/4 heatmaps), ``loss_kpt_highres`` (1/2),
        ``loss_pull`` and ``loss_push``; the data samples need two levels
        (1/4, 1/2) of ``gt_fields.heatmaps`` and ``heatmap_mask`` (from
        :class:`~sspose_mm.codecs.MultiResolutionAssociativeEmbedding` and
        ``BottomupGetHeatmapMask``) and ``gt_instance_labels.keypoint_indices``
        at 1/4."""
        predictions = self.forward_stages(feats)
        losses = {}
        for level, name in enumerate(('loss_kpt', 'loss_kpt_highres')):
            target = torch.stack(
                [d.gt_fields.heatmaps[level] for d in batch_data_samples])
            mask = torch.stack([
                d.gt_fields.heatmap_mask[level] for d in batch_data_samples
            ]).to(target)
            pred = predictions[2 * level]
            if pred.shape != target.shape:
                raise ValueError(
                    f'{name}: predicted heatmaps {tuple(pred.shape)} and '
                    f'targets {tuple(target.shape)} differ; the codec\'s '
                    'heatmap sizes must be 1/4 and 1/2 of the input size')
            losses[name] = self.loss_module.keypoint_loss(
                pred, target, None, mask.unsqueeze(1))
        pull, push = self.loss_module.tag_loss(predictions[1], [
            d.gt_instance_labels.keypoint_indices for d in batch_data_samples
        ])
        n = len(batch_data_samples)
        return dict(losses, loss_pull=pull / n, loss_push=push / n)

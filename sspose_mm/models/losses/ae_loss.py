"""MMPose's associative-embedding loss without host synchronisation."""
from typing import List, Tuple, Union

import torch
from mmpose.models.losses import AssociativeEmbeddingLoss
from mmpose.registry import MODELS
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence


@MODELS.register_module()
class BatchedAssociativeEmbeddingLoss(AssociativeEmbeddingLoss):
    """MMPose's :class:`AssociativeEmbeddingLoss` for the whole batch at once.

    MMPose's loss loops over images, people and keypoints and asks a Python
    ``if`` whether each keypoint is visible: on CUDA a GPU wait each (about
    12 x 30 x 17 per batch of HigherPose). Here people are padded to one
    ``(B, N, K)`` grid and visibility is a mask, so nothing leaves the
    device. Same values and gradients (``tests/test_gpu_readiness.py``),
    MMPose's details included: the push sum includes the ``i = j`` pairs,
    the terms are divided by ``N + 1e-6`` and ``N (N - 1) + 1e-6``, people
    without a visible keypoint do not count, and an image with fewer than
    two people has no push loss. Args as MMPose's (``loss_weight`` of both
    terms, ``push_loss_factor`` of the push term, default 0.5).
    """

    def forward(self, tags: Tensor,
                keypoint_indices: Union[List[Tensor],
                                        Tensor]) -> Tuple[Tensor, Tensor]:
        """Scalar pull and push losses summed over the images, of tag maps
        ``(B, L*K, H, W)`` (channel ``l*K + k`` for dimension ``l`` of
        keypoint ``k``) and per image ``(N_i, K, 2)`` ``keypoint_indices``
        ``(y*W + x, visible)`` (a list or a stacked tensor)."""
        B, C, H, W = tags.shape
        if len(keypoint_indices) != B:
            raise ValueError(f'{len(keypoint_indices)} keypoint index sets '
                             f'for a batch of {B} tag maps')
        indices = pad_sequence(list(keypoint_indices), batch_first=True)
        K = indices.shape[2]
        L = C // K
        visible = indices[..., 1] != 0  # (B, N, K)
        # Padded people, invisible keypoints read position 0; masked below.
        positions = torch.where(visible, indices[..., 0], 0)
        images = torch.arange(B, device=tags.device)[:, None, None]
        keypoints = torch.arange(K, device=tags.device)
        person_tags = tags.view(B, L, K, H * W)[images, :, keypoints,
                                                positions]  # (B, N, K, L)
        weight = visible[..., None].to(tags.dtype)
        counts = visible.sum(dim=2)  # (B, N)
        people = counts > 0
        num_people = people.sum(dim=1).to(tags.dtype)  # (B, )
        means = (person_tags * weight).sum(dim=2) / counts.clamp(
            min=1)[..., None]  # (B, N, L)

        # MSE of each person's keypoint tags to their mean.
        squared = ((person_tags - means[:, :, None])**2 * weight).sum((2, 3))
        pull = squared / (counts * L).clamp(min=1)
        eps = 1e-6
        pull = pull.sum(dim=1) / (num_people + eps)

        differences = means[:, None] - means[:, :, None]  # (B, N, N, L)
        pairs = (people[:, None] & people[:, :, None])[..., None]
        push = (torch.exp(-differences.pow(2)) * pairs).sum((1, 2, 3))
        push = push / ((num_people - 1) * num_people + eps)
        push = torch.where(num_people > 1, push, 0.)

        return (pull.sum() * self.loss_weight,
                push.sum() * self.loss_weight * self.push_loss_factor)

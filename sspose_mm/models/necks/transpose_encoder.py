from typing import Sequence, Tuple

from mmengine.model import BaseModule
from mmpose.registry import MODELS
from mmpose.utils.typing import OptConfigType
from torch import Tensor, nn

from ..utils import PostNormEncoderLayer, sine_position_embedding


@MODELS.register_module()
class TransPoseEncoder(BaseModule):
    """The Transformer encoder of `TransPose`_, as a neck.

    A bias-free 1x1 conv reduces the backbone's last map to ``embed_dims``
    channels; its positions (row-major tokens) go through ``num_layers``
    post-norm encoder layers with the 2D sine position embedding added to
    queries and keys in each. Shapes: ``(B, C_in, h, w)`` in,
    ``(B, embed_dims, h, w)`` out.

    Unlike the original, the sine table is computed for the actual feature
    size instead of frozen for 256x192 (where it equals the official
    ``pos_embedding``), so any input size works.

    Args:
        dropout (float): Dropout everywhere in the encoder.
        activation (str): FFN activation.
        init_cfg (dict, optional): Xavier-uniform on every linear layer by
            default, as the original (the packed q/k/v likewise).

    .. _`TransPose`: https://arxiv.org/abs/2012.14214
    """

    def __init__(self,
                 in_channels: int,
                 embed_dims: int,
                 num_layers: int,
                 num_heads: int,
                 feedforward_channels: int,
                 dropout: float = 0.1,
                 activation: str = 'relu',
                 init_cfg: OptConfigType = dict(
                     type='Xavier', layer='Linear', distribution='uniform')):
        super().__init__(init_cfg=init_cfg)
        self.reduce = nn.Conv2d(in_channels, embed_dims, 1, bias=False)
        self.layers = nn.ModuleList(
            PostNormEncoderLayer(embed_dims, num_heads, feedforward_channels,
                                 dropout, activation)
            for _ in range(num_layers))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor]:
        """Encode the last feature map of ``inputs``; returns a 1-tuple."""
        x = self.reduce(inputs[-1])
        B, C, h, w = x.shape
        pos = sine_position_embedding(h, w, C, device=x.device, dtype=x.dtype)
        tokens = x.flatten(2).transpose(1, 2)
        for layer in self.layers:
            tokens = layer(tokens, pos)
        return (tokens.transpose(1, 2).reshape(B, C, h, w), )

from typing import Sequence, Tuple

from mmengine.model import BaseModule
from mmpose.registry import MODELS
from mmpose.utils.typing import OptConfigType
from torch import Tensor, nn

from ..utils import PostNormEncoderLayer, sine_position_embedding


@MODELS.register_module()
class TransPoseEncoder(BaseModule):
    """The Transformer encoder of `TransPose`_, as a neck.

    A bias-free 1x1 convolution reduces the backbone's last feature map to
    ``embed_dims`` channels, its positions become tokens (row-major), and
    ``num_layers`` post-norm encoder layers attend over all of them with the
    2D sine position embedding added to queries and keys in every layer.
    The output is reshaped back to a feature map for a heatmap head.

    Differs from the original in one way on purpose: the sine table is
    computed for the actual feature size instead of being frozen for
    256x192 inputs, so any input size works (for 256x192 it equals the
    official ``pos_embedding`` exactly).

    Shapes: ``(B, C_in, h, w)`` in, ``(B, embed_dims, h, w)`` out.

    Args:
        in_channels (int): Channels of the backbone's last output.
        embed_dims (int): Token dimension ``d``.
        num_layers (int): Number of encoder layers.
        num_heads (int): Attention heads.
        feedforward_channels (int): FFN hidden width ``h``.
        dropout (float): Dropout everywhere in the encoder. Defaults to 0.1.
        activation (str): FFN activation. Defaults to ``'relu'``.
        init_cfg (dict, optional): Initialisation config. Defaults to
            xavier-uniform on every linear layer of the encoder, as the
            original (the packed q/k/v projection is initialised likewise).

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
        self.embed_dims = embed_dims
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

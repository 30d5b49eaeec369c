from .position_encoding import (resize_position_embedding,
                                sine_position_embedding)
from .transformer import MultiheadSelfAttention, PostNormEncoderLayer, ViTBlock

__all__ = [
    'sine_position_embedding', 'resize_position_embedding',
    'MultiheadSelfAttention', 'PostNormEncoderLayer', 'ViTBlock'
]

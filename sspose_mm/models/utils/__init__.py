from .position_encoding import (fit_position_table, resize_position_embedding,
                                sine_position_embedding, stored_grid)
from .transformer import (MultiheadSelfAttention, PostNormEncoderLayer,
                          ViTBlock, gather_tokens)

__all__ = [
    'fit_position_table', 'sine_position_embedding',
    'resize_position_embedding', 'stored_grid', 'MultiheadSelfAttention',
    'PostNormEncoderLayer', 'ViTBlock', 'gather_tokens'
]

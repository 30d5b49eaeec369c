from .position_encoding import sine_position_embedding
from .transformer import (MultiheadSelfAttention, PostNormEncoderLayer,
                          ViTBlock)

__all__ = ['sine_position_embedding', 'MultiheadSelfAttention',
           'PostNormEncoderLayer', 'ViTBlock']

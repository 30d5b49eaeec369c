from .position_encoding import sine_position_embedding
from .transformer import MultiheadSelfAttention, PostNormEncoderLayer

__all__ = ['sine_position_embedding', 'MultiheadSelfAttention',
           'PostNormEncoderLayer']

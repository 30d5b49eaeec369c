from .transpose_encoder import TransPoseEncoder

__all__ = ['TransPoseEncoder']

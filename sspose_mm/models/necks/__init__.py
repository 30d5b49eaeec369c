from .transpose_encoder import TransPoseEncoder  # noqa: F401

"""Optimizer wrapper constructors of this package's recipes."""
from .sharpose_layer_decay import SHaRPoseLayerDecayOptimWrapperConstructor

__all__ = ['SHaRPoseLayerDecayOptimWrapperConstructor']

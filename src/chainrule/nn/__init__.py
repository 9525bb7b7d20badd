"""The NumPy engine: modules with explicit forward and backward."""

from .layers import Linear, ReLU
from .losses import Loss, SoftmaxCrossEntropy
from .module import Module, Param, Sequential

__all__ = ["Linear", "Loss", "Module", "Param", "ReLU", "Sequential", "SoftmaxCrossEntropy"]

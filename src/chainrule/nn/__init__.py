"""The NumPy engine: modules with explicit forward and backward."""

from .activations import ELU, LeakyReLU, Sigmoid, Softmax, Tanh
from .batchnorm import BatchNorm1d
from .dropout import Dropout
from .layers import Linear, ReLU
from .losses import CrossEntropy, Loss, SoftmaxCrossEntropy
from .mlp import MLP
from .module import Module, Param, Sequential
from .penalty import Penalty
from .serialization import load, save

__all__ = ["Linear", "Loss", "Module", "Param", "ReLU", "Sequential", "SoftmaxCrossEntropy"]
__all__ += [
    "BatchNorm1d",
    "CrossEntropy",
    "Dropout",
    "ELU",
    "LeakyReLU",
    "MLP",
    "Penalty",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "load",
    "save",
]

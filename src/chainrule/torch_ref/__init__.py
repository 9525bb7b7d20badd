"""PyTorch reference models (imports torch; the NumPy engine never imports this package)."""

from .batchnorm import BatchNormAutograd, BatchNormFunction, BatchNormManual
from .mlp import BATCH_NORM_IMPLS, bn_state_name_map, copy_from_torch, to_torch

__all__ = [
    "BATCH_NORM_IMPLS",
    "BatchNormAutograd",
    "BatchNormFunction",
    "BatchNormManual",
    "bn_state_name_map",
    "copy_from_torch",
    "to_torch",
]

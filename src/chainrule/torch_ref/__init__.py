"""PyTorch reference models (imports torch; the NumPy engine never imports this package)."""

from .batchnorm import BatchNormAutograd, BatchNormFunction, BatchNormManual
from .cnn import (
    CNN_NAMES,
    FastNet,
    LookaheadEMA,
    SeedVGG,
    build_cnn,
    count_flops,
    init_whitening,
    param_groups,
    tta_logits,
)
from .mlp import BATCH_NORM_IMPLS, bn_state_name_map, copy_from_torch, to_torch

__all__ = [
    "BATCH_NORM_IMPLS",
    "CNN_NAMES",
    "BatchNormAutograd",
    "BatchNormFunction",
    "BatchNormManual",
    "FastNet",
    "LookaheadEMA",
    "SeedVGG",
    "bn_state_name_map",
    "build_cnn",
    "copy_from_torch",
    "count_flops",
    "init_whitening",
    "param_groups",
    "to_torch",
    "tta_logits",
]

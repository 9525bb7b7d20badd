"""PyTorch reference models (imports torch; the NumPy engine never imports this package)."""

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
from .mlp import copy_from_torch, to_torch

__all__ = [
    "CNN_NAMES",
    "FastNet",
    "LookaheadEMA",
    "SeedVGG",
    "build_cnn",
    "copy_from_torch",
    "count_flops",
    "init_whitening",
    "param_groups",
    "to_torch",
    "tta_logits",
]

"""PyTorch reference models (the NumPy engine never imports them). The package imports torch only when
one of its models is used; `catalog` names them without torch."""

import importlib
from typing import Any

# public name -> the module that defines it; imported on first use (PEP 562), so that
# `chainrule.torch_ref.catalog` (names only) is importable without torch
_EXPORTS = {
    "BatchNormAutograd": "batchnorm",
    "BatchNormFunction": "batchnorm",
    "BatchNormManual": "batchnorm",
    "CNN_NAMES": "cnn",
    "FastNet": "cnn",
    "LookaheadEMA": "cnn",
    "SeedVGG": "cnn",
    "build_cnn": "cnn",
    "count_flops": "cnn",
    "init_whitening": "cnn",
    "param_groups": "cnn",
    "tta_logits": "cnn",
    "BATCH_NORM_IMPLS": "mlp",
    "bn_state_name_map": "mlp",
    "copy_from_torch": "mlp",
    "to_torch": "mlp",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


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

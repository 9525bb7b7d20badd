"""PyTorch reference models (imports torch; the NumPy engine never imports this package)."""

from .mlp import copy_from_torch, to_torch

__all__ = ["copy_from_torch", "to_torch"]

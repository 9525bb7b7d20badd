"""PyTorch twins of chainrule models, with identical weights (for comparison tests and benchmarks).

Parameter and buffer names match on both sides ("0.weight", "1.running_mean", ...), because both
number the children of a Sequential from 0 and BatchNorm uses PyTorch's buffer names. The one
exception: the hand-built batch norms (`batch_norm_impl="autograd"` or `"manual"`) call their
parameters gamma and beta, where chainrule and torch say weight and bias (`bn_state_name_map`).
"""

from __future__ import annotations

import importlib

import numpy as np
import torch
from torch import nn

from ..nn.activations import ELU, LeakyReLU, Sigmoid, Softmax, Tanh
from ..nn.batchnorm import BatchNorm1d
from ..nn.dropout import Dropout
from ..nn.layers import Linear, ReLU
from ..nn.module import Module, Sequential
from .batchnorm import BatchNormAutograd, BatchNormManual
from .catalog import BATCH_NORM_IMPLS as _CATALOG_IMPLS

# to_torch's choices for chainrule BatchNorm1d layers (their names: catalog.BATCH_NORM_IMPLS)
BATCH_NORM_IMPLS: dict[str, type[nn.Module]] = {
    name: getattr(importlib.import_module(module), cls)
    for name, (module, _, cls) in ((k, v.partition(":")) for k, v in _CATALOG_IMPLS.items())
}


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, copy=True))


def to_torch(model: Module, batch_norm_impl: str = "torch") -> nn.Module:
    """An equivalent `torch.nn` module with copies of the weights and buffers, the same dtype and
    the same train/eval mode. Supports Linear, ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softmax,
    Dropout (same p; masks differ, being drawn by torch's generator), BatchNorm1d, Sequential/MLP.

    Args:
        model: the chainrule module.
        batch_norm_impl: what BatchNorm1d layers become: "torch" (torch.nn.BatchNorm1d),
            "autograd" (`BatchNormAutograd`) or "manual" (`BatchNormManual`, hand-written
            backward); the last two take weight/bias as gamma/beta and need affine=True.
    """
    if batch_norm_impl not in BATCH_NORM_IMPLS:
        raise ValueError(
            f"to_torch: unknown batch_norm_impl {batch_norm_impl!r}, expected one of {list(BATCH_NORM_IMPLS)}"
        )
    if isinstance(model, Sequential):
        out: nn.Module = nn.Sequential(*[to_torch(m, batch_norm_impl) for m in model.children()])
    elif isinstance(model, Linear):
        W = model.weight.data
        out = nn.Linear(model.in_features, model.out_features, bias=model.bias is not None, dtype=_dtype(W))
        with torch.no_grad():
            out.weight.copy_(_tensor(W))
            if model.bias is not None:
                out.bias.copy_(_tensor(model.bias.data))
    elif isinstance(model, ReLU):
        out = nn.ReLU()
    elif isinstance(model, LeakyReLU):
        out = nn.LeakyReLU(model.negative_slope)
    elif isinstance(model, ELU):
        out = nn.ELU(model.alpha)
    elif isinstance(model, Sigmoid):
        out = nn.Sigmoid()
    elif isinstance(model, Tanh):
        out = nn.Tanh()
    elif isinstance(model, Softmax):
        out = nn.Softmax(dim=-1)
    elif isinstance(model, Dropout):
        out = nn.Dropout(model.p)
    elif isinstance(model, BatchNorm1d):
        dtype = _dtype(model.running_mean)
        if batch_norm_impl == "torch":
            out = nn.BatchNorm1d(
                model.num_features, eps=model.eps, momentum=model.momentum, affine=model.affine, dtype=dtype
            )
            weight, bias = out.weight, out.bias
        elif model.affine:
            bn_cls = BATCH_NORM_IMPLS[batch_norm_impl]
            out = bn_cls(model.num_features, model.eps, momentum=model.momentum, dtype=dtype)
            weight, bias = out.gamma, out.beta
        else:
            raise ValueError(
                f"to_torch: batch_norm_impl={batch_norm_impl!r} needs an affine BatchNorm1d (gamma and "
                "beta); use batch_norm_impl='torch' for affine=False"
            )
        with torch.no_grad():
            if model.weight is not None and model.bias is not None:
                weight.copy_(_tensor(model.weight.data))
                bias.copy_(_tensor(model.bias.data))
            out.running_mean.copy_(_tensor(model.running_mean))
            out.running_var.copy_(_tensor(model.running_var))
            out.num_batches_tracked.fill_(int(model.num_batches_tracked))
    else:
        raise TypeError(f"to_torch: no PyTorch equivalent for {type(model).__name__}")
    out.train(model.training)
    return out


def bn_state_name_map(torch_module: nn.Module) -> dict[str, str]:
    """State-dict names of the hand-built batch norms' parameters in `torch_module`, mapped to
    chainrule's (and torch.nn.BatchNorm1d's): {"1.gamma": "1.weight", "1.beta": "1.bias", ...}.
    Every other name is the same on both sides."""
    names: dict[str, str] = {}
    for prefix, module in torch_module.named_modules():
        if isinstance(module, (BatchNormAutograd, BatchNormManual)):
            dot = f"{prefix}." if prefix else ""
            names[f"{dot}gamma"] = f"{dot}weight"
            names[f"{dot}beta"] = f"{dot}bias"
    return names


def copy_from_torch(torch_module: nn.Module, model: Module) -> None:
    """Copy the weights and buffers of a `to_torch` twin (or any torch module with the same
    state-dict names and shapes; gamma/beta of the hand-built batch norms go to weight/bias)
    back into `model`, in place."""
    rename = bn_state_name_map(torch_module)
    sd = {rename.get(name, name): t for name, t in torch_module.state_dict().items()}
    model.load_state_dict(
        {name: sd[name].detach().cpu().numpy() for name in model.state_dict() if name in sd}
    )


def _dtype(a: np.ndarray) -> torch.dtype:
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(a.dtype)]

"""PyTorch twins of chainrule models, with identical weights (for comparison tests and benchmarks).

Parameter and buffer names match on both sides ("0.weight", "1.running_mean", ...), because both
number the children of a Sequential from 0 and BatchNorm uses PyTorch's buffer names.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..nn.activations import ELU, LeakyReLU, Sigmoid, Softmax, Tanh
from ..nn.batchnorm import BatchNorm1d
from ..nn.dropout import Dropout
from ..nn.layers import Linear, ReLU
from ..nn.module import Module, Sequential


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, copy=True))


def to_torch(model: Module) -> nn.Module:
    """An equivalent `torch.nn` module with copies of the weights and buffers, the same dtype and
    the same train/eval mode. Supports Linear, ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softmax,
    Dropout (same p; masks differ, being drawn by torch's generator), BatchNorm1d, Sequential/MLP."""
    if isinstance(model, Sequential):
        out: nn.Module = nn.Sequential(*[to_torch(m) for m in model.children()])
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
        out = nn.BatchNorm1d(
            model.num_features,
            eps=model.eps,
            momentum=model.momentum,
            affine=model.affine,
            dtype=_dtype(model.running_mean),
        )
        with torch.no_grad():
            if model.weight is not None and model.bias is not None:
                out.weight.copy_(_tensor(model.weight.data))
                out.bias.copy_(_tensor(model.bias.data))
            out.running_mean.copy_(_tensor(model.running_mean))
            out.running_var.copy_(_tensor(model.running_var))
            out.num_batches_tracked.fill_(int(model.num_batches_tracked))
    else:
        raise TypeError(f"to_torch: no PyTorch equivalent for {type(model).__name__}")
    out.train(model.training)
    return out


def copy_from_torch(torch_module: nn.Module, model: Module) -> None:
    """Copy the weights and buffers of a `to_torch` twin (or any torch module with the same
    state-dict names and shapes) back into `model`, in place."""
    sd = torch_module.state_dict()
    model.load_state_dict(
        {name: sd[name].detach().cpu().numpy() for name in model.state_dict() if name in sd}
    )


def _dtype(a: np.ndarray) -> torch.dtype:
    return {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(a.dtype)]

"""Worst finite-difference gradient-check error of every module and loss (float64, step 1e-5),
over batch sizes 1, 3, 7 and 32 (BatchNorm from 3: at N = 2 its input gradient is zero up to eps).
The tests assert < 1e-6; this prints the figures.  Run: python tools/gradcheck_table.py"""

import numpy as np

import chainrule.nn as nn
from chainrule.gradcheck import check_loss, check_module

F64 = np.float64
MODULES = {
    "Linear": lambda: nn.Linear(6, 4, dtype=F64, rng=0),
    "ReLU": nn.ReLU,
    "LeakyReLU": nn.LeakyReLU,
    "ELU": nn.ELU,
    "Sigmoid": nn.Sigmoid,
    "Tanh": nn.Tanh,
    "Softmax": nn.Softmax,
    "Dropout": lambda: nn.Dropout(0.3, seed=0),
    "BatchNorm1d": lambda: nn.BatchNorm1d(6, dtype=F64),
    "MLP+BN+dropout": lambda: nn.MLP(6, [5, 4], 3, batch_norm=True, dropout=0.2, dtype=F64, seed=0),
}


def main() -> None:
    for name, make in MODULES.items():
        sizes = (3, 7, 32) if "BN" in name or "BatchNorm" in name else (1, 3, 7, 32)
        worst = max(
            check_module(make(), np.random.default_rng(n).standard_normal((n, 6)) * 2, eps=1e-5).max_error
            for n in sizes
        )
        print(f"{name:20s} N in {sizes}: {worst:.1e}")
    rng = np.random.default_rng(0)
    for n in (1, 5, 64):
        z = rng.standard_normal((n, 10))
        y = rng.integers(0, 10, n)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        fused = check_loss(nn.SoftmaxCrossEntropy(), z, y, eps=1e-5)
        plain = check_loss(nn.CrossEntropy(), p, y, eps=1e-7)
        print(f"SoftmaxCrossEntropy N={n}: {fused:.1e}   CrossEntropy N={n}: {plain:.1e}")


if __name__ == "__main__":
    main()

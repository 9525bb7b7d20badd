"""Every module and loss against central finite differences, in float64 (relative error < 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.nn as nn
from chainrule.gradcheck import check_loss, check_module
from chainrule.nn.module import Module

TOL = 1e-6
EPS = 1e-5  # central-difference step: truncation ~eps^2, round-off ~1e-16 |L| / eps
F64 = np.float64
SHAPES = [(1, 3), (2, 5), (7, 4), (16, 9)]  # (batch, features), batch size 1 included


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _away_from_kink(x: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """Move entries off 0, where ReLU-like functions are not differentiable."""
    return np.where(np.abs(x) < margin, margin * np.sign(x) + margin * (x == 0), x)


ELEMENTWISE = {
    "relu": lambda d: nn.ReLU(),
    "leaky_relu": lambda d: nn.LeakyReLU(0.1),
    "elu": lambda d: nn.ELU(alpha=0.7),
    "sigmoid": lambda d: nn.Sigmoid(),
    "tanh": lambda d: nn.Tanh(),
    "softmax": lambda d: nn.Softmax(),
    "dropout": lambda d: nn.Dropout(0.4, seed=3),
    "linear": lambda d: nn.Linear(d, 3, dtype=F64, rng=1),
    "linear_nobias": lambda d: nn.Linear(d, 2, bias=False, dtype=F64, rng=2),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_module_gradcheck(name: str, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(hash((name, shape)) % 2**32)
    module = ELEMENTWISE[name](shape[1])
    x = _away_from_kink(rng.standard_normal(shape))
    result = check_module(module, x, eps=EPS)
    assert result.errors, "gradcheck checked nothing"
    assert result.max_error < TOL, f"{name} {shape}: {result}"


# N = 2 is left out on purpose: with two samples xhat = +-1 whatever x is, so dL/dx is exactly 0
# and a relative error compares rounding noise with rounding noise.
@pytest.mark.parametrize("shape", [(3, 3), (5, 4), (32, 6)])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_train_gradcheck(shape: tuple[int, int], affine: bool) -> None:
    rng = np.random.default_rng(shape[0])
    bn = nn.BatchNorm1d(shape[1], affine=affine, dtype=F64)
    if affine:
        bn.weight.data[:] = rng.uniform(0.5, 2.0, shape[1])
        bn.bias.data[:] = rng.standard_normal(shape[1])
    x = rng.standard_normal(shape) * 3 + 1
    # check_module runs several forwards: the running statistics move but the output does not use them
    result = check_module(bn, x, eps=EPS)
    assert result.max_error < TOL, str(result)
    assert set(result.errors) == ({"input", "weight", "bias"} if affine else {"input"})


@pytest.mark.parametrize("n", [1, 4])
def test_batchnorm_eval_gradcheck(n: int) -> None:
    rng = np.random.default_rng(n)
    bn = nn.BatchNorm1d(5, dtype=F64)
    bn.running_mean[:] = rng.standard_normal(5)
    bn.running_var[:] = rng.uniform(0.5, 2, 5)
    bn.weight.data[:] = rng.uniform(0.5, 2.0, 5)
    bn.eval()
    result = check_module(bn, rng.standard_normal((n, 5)), eps=EPS)
    assert result.max_error < TOL, str(result)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"activation": "relu"},
        {"activation": "tanh", "batch_norm": True, "dropout": 0.3},
        {"activation": "sigmoid", "dropout": 0.2},
        {"activation": "elu", "batch_norm": True},
        {"activation": "leaky_relu", "init": "xavier_normal"},
    ],
)
def test_mlp_gradcheck(kwargs: dict) -> None:
    model = nn.MLP(6, [5, 4], 3, dtype=F64, seed=11, **kwargs)
    x = np.random.default_rng(0).standard_normal((8, 6))
    result = check_module(model, x, eps=EPS)
    n_params = len(model.parameters())
    assert len(result.errors) == n_params + 1
    assert result.max_error < TOL, f"{kwargs}: {result}"


def test_mlp_gradcheck_batch_of_one() -> None:
    model = nn.MLP(4, [3], 2, activation="sigmoid", dtype=F64, seed=0)
    result = check_module(model, np.random.default_rng(1).standard_normal((1, 4)), eps=EPS)
    assert result.max_error < TOL, str(result)


def test_sequential_gradcheck() -> None:
    model = nn.Sequential(
        nn.Linear(5, 6, dtype=F64, rng=0), nn.Tanh(), nn.Linear(6, 4, dtype=F64, rng=1), nn.Softmax()
    )
    result = check_module(model, np.random.default_rng(2).standard_normal((3, 5)), eps=EPS)
    assert result.max_error < TOL, str(result)


# ---- losses ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, c", [(1, 2), (4, 3), (9, 10)])
def test_softmax_cross_entropy_gradcheck(n: int, c: int) -> None:
    rng = np.random.default_rng(n * c)
    z = rng.standard_normal((n, c))
    labels = rng.integers(0, c, n)
    assert check_loss(nn.SoftmaxCrossEntropy(), z, labels, eps=EPS) < TOL
    soft = _softmax(rng.standard_normal((n, c)))
    assert check_loss(nn.SoftmaxCrossEntropy(), z, soft, eps=EPS) < TOL


@pytest.mark.parametrize("n, c", [(1, 2), (4, 3), (9, 10)])
def test_cross_entropy_on_probabilities_gradcheck(n: int, c: int) -> None:
    rng = np.random.default_rng(n + c)
    probs = _softmax(rng.standard_normal((n, c)))
    labels = rng.integers(0, c, n)
    assert check_loss(nn.CrossEntropy(), probs, labels, eps=1e-7) < TOL
    soft = _softmax(rng.standard_normal((n, c)))
    assert check_loss(nn.CrossEntropy(), probs, soft, eps=1e-7) < TOL


def test_softmax_then_cross_entropy_equals_fused() -> None:
    """The seeds' modular chain (Softmax -> CrossEntropy, -t/x through diag(y) - y y^T) gives the
    fused gradient (p - t)/N."""
    rng = np.random.default_rng(5)
    z = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    sm, ce, fused = nn.Softmax(), nn.CrossEntropy(), nn.SoftmaxCrossEntropy()
    loss = ce.forward(sm.forward(z), labels)
    g = sm.backward(ce.backward())
    assert loss == pytest.approx(fused.forward(z, labels), rel=1e-12)
    np.testing.assert_allclose(g, fused.backward(), rtol=1e-10, atol=1e-15)


def test_penalty_gradcheck() -> None:
    model = nn.MLP(4, [5], 3, dtype=F64, seed=0)
    pen = nn.Penalty(model, l1=0.03, l2=0.2)
    for p in model.parameters():
        p.grad.fill(0)
    pen.backward()
    for name, p in model.named_parameters():
        idx = np.arange(p.data.size)
        num = np.empty(idx.size)
        flat = p.data.reshape(-1)
        for k in idx:
            old = flat[k]
            flat[k] = old + 1e-6
            fp = pen.loss()
            flat[k] = old - 1e-6
            fm = pen.loss()
            flat[k] = old
            num[k] = (fp - fm) / 2e-6
        if p.data.ndim >= 2:
            np.testing.assert_allclose(p.grad.reshape(-1), num, rtol=1e-6, atol=1e-9, err_msg=name)
        else:  # biases are not penalized by default
            assert not p.grad.any() and not num.any()


# ---- the checker itself ---------------------------------------------------------------------------


class _WrongSigmoid(Module):
    """A sigmoid whose backward forgets the (1 - y) factor."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._y = 1 / (1 + np.exp(-x))
        return self._y

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return grad_out * self._y


class _WrongLinearBias(nn.Linear):
    """A Linear whose bias gradient is the mean over the batch instead of the sum."""

    def backward(self, grad_out: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        gx = super().backward(grad_out, input_grad)
        self.bias.grad[...] = grad_out.mean(axis=0)
        return gx


def test_gradcheck_detects_wrong_backward() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3))
    assert check_module(_WrongSigmoid(), x).max_error > 1e-2
    wrong = check_module(_WrongLinearBias(3, 2, dtype=F64, rng=0), x)
    assert wrong.errors["bias"] > 1e-2
    assert wrong.errors["weight"] < TOL and wrong.errors["input"] < TOL  # only the broken part is flagged

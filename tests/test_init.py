"""Initializer statistics on large layers, seeding, and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule.nn as nn
from chainrule.nn.init import INITIALIZERS

FAN_IN, FAN_OUT = 800, 500  # 400k weights: std estimates within ~0.2%


def _layer(init: str, **kw) -> nn.Linear:
    return nn.Linear(FAN_IN, FAN_OUT, init=init, rng=kw.pop("rng", 0), **kw)


def _check_moments(a: np.ndarray, std: float) -> None:
    a = a.astype(np.float64)
    assert abs(a.mean()) < 5 * std / math.sqrt(a.size), f"mean {a.mean()} for std {std}"
    assert a.std() == pytest.approx(std, rel=0.01)


def test_torch_default_is_kaiming_uniform() -> None:
    layer = _layer("torch")
    bound = 1 / math.sqrt(FAN_IN)  # kaiming_uniform(a=sqrt(5)): gain sqrt(1/3) * sqrt(3 / fan_in)
    for a in (layer.weight.data, layer.bias.data):
        assert np.abs(a).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.99 * bound  # it fills the interval
    _check_moments(layer.weight.data, bound / math.sqrt(3))
    assert np.unique(layer.bias.data).size == FAN_OUT  # biases are random too, as in PyTorch


def test_uva_normal_default_std_and_zero_biases() -> None:
    layer = _layer("normal")
    _check_moments(layer.weight.data, 1e-4)
    assert not layer.bias.data.any()
    custom = _layer("normal", init_std=0.05)
    _check_moments(custom.weight.data, 0.05)
    assert not custom.bias.data.any()


def test_zeros() -> None:
    layer = _layer("zeros")
    assert not layer.weight.data.any() and not layer.bias.data.any()


@pytest.mark.parametrize(
    "init, std",
    [
        ("xavier_uniform", math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("xavier_normal", math.sqrt(2 / (FAN_IN + FAN_OUT))),
        ("he_normal", math.sqrt(2 / FAN_IN)),
    ],
)
def test_scaled_initializers(init: str, std: float) -> None:
    layer = _layer(init)
    _check_moments(layer.weight.data, std)
    assert not layer.bias.data.any()
    if init == "xavier_uniform":
        bound = math.sqrt(6 / (FAN_IN + FAN_OUT))
        assert np.abs(layer.weight.data).max() <= bound
        assert np.abs(layer.weight.data).max() > 0.99 * bound
    else:  # normal: about 0.27% of draws beyond 3 std
        assert 0.001 < (np.abs(layer.weight.data) > 3 * std).mean() < 0.005


@pytest.mark.parametrize("init", INITIALIZERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_seeded_and_dtype(init: str, dtype) -> None:
    a = nn.Linear(30, 20, init=init, dtype=dtype, rng=7)
    b = nn.Linear(30, 20, init=init, dtype=dtype, rng=np.random.default_rng(7))
    c = nn.Linear(30, 20, init=init, dtype=dtype, rng=8)
    assert a.weight.data.dtype == dtype and a.bias.data.dtype == dtype
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    if init != "zeros":
        assert not np.array_equal(a.weight.data, c.weight.data)


def test_mlp_passes_init_to_every_linear() -> None:
    m = nn.MLP(FAN_IN, [FAN_OUT], 10, init="normal", init_std=1e-4, seed=0)
    for layer in (m[0], m[2]):
        assert not layer.bias.data.any()
        assert layer.weight.data.std() == pytest.approx(1e-4, rel=0.05)


def test_errors() -> None:
    with pytest.raises(ValueError, match="unknown init 'kaiming'; choose one of torch, normal"):
        nn.Linear(3, 2, init="kaiming")
    with pytest.raises(ValueError, match="init_std must be positive, got -0.1"):
        nn.Linear(3, 2, init="normal", init_std=-0.1)
    with pytest.raises(ValueError, match="Linear needs positive sizes"):
        nn.Linear(0, 2)

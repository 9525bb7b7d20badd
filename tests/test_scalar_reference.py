"""Seed 002, Question 3: the pure-Python 2-3-2 network reproduces the worked example, and the
vectorized engine gives the same numbers on the same network."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule.nn as nn
from chainrule.nn import scalar_reference as ref


def test_no_numpy_in_scalar_reference() -> None:
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(ref))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "math"}, imported


def test_reproduces_seed002_printed_values() -> None:
    r = ref.seed002_example()
    # as printed in the seed (4 decimals)
    for row in r["v_d"]:
        assert [round(v, 4) for v in row] == [-0.4404, 0.4404]
    assert r["b2_d"] == [-0.5, 0.5]
    assert all(v == 0 for row in r["w_d"] for v in row)
    assert r["b1_d"] == [0.0, 0.0, 0.0]


def test_seed002_exact_values() -> None:
    """Everything here is derivable by hand: k_j = 1*1 + (-1)(-1) = 2, h = sigmoid(2),
    o_m = h (1 - 1 - 1) = -h for both outputs, so y = [1/2, 1/2] and l = log 2;
    dl/do = y - onehot(0) = [-1/2, 1/2], dl/dV_jm = h dl/do_m, dl/dh_j = sum_m dl/do_m V_jm = 0."""
    r = ref.seed002_example()
    s2 = 1 / (1 + math.exp(-2))
    assert r["k"] == [2.0, 2.0, 2.0]
    for h in r["h"]:
        assert h == pytest.approx(s2, abs=1e-12)
    for o in r["o"]:
        assert o == pytest.approx(-s2, abs=1e-12)
    assert r["y"] == pytest.approx([0.5, 0.5], abs=1e-12)
    assert r["loss"] == pytest.approx(math.log(2), abs=1e-12)
    assert r["y_d"] == pytest.approx([-2.0, 0.0], abs=1e-12)
    assert r["o_d"] == pytest.approx([-0.5, 0.5], abs=1e-12)
    for row in r["v_d"]:
        assert row == pytest.approx([-s2 / 2, s2 / 2], abs=1e-12)
    assert r["h_d"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)
    assert r["k_d"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-12)


def _engine_grads(x, W, b1, V, b2, c):
    """The same network on the vectorized engine; Linear weights are (out, in) = the seed's transposes."""
    model = nn.Sequential(nn.Linear(2, 3, dtype=np.float64), nn.Sigmoid(), nn.Linear(3, 2, dtype=np.float64))
    model[0].weight.data[...] = np.array(W).T
    model[0].bias.data[...] = b1
    model[2].weight.data[...] = np.array(V).T
    model[2].bias.data[...] = b2
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn.forward(model.forward(np.array([x], np.float64)), np.array([c]))
    model.backward(loss_fn.backward())
    return loss, model


def test_engine_matches_seed002_example() -> None:
    r = ref.seed002_example()
    loss, model = _engine_grads(
        ref.SEED002_X, ref.SEED002_W, ref.SEED002_B1, ref.SEED002_V, ref.SEED002_B2, 0
    )
    assert loss == pytest.approx(r["loss"], abs=1e-12)
    np.testing.assert_allclose(model[2].weight.grad.T, r["v_d"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(model[2].bias.grad, r["b2_d"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(model[0].weight.grad.T, r["w_d"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(model[0].bias.grad, r["b1_d"], rtol=0, atol=1e-12)


def test_engine_matches_reference_on_random_network() -> None:
    """Where the example's symmetry makes most gradients 0, a random network checks every entry."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2).tolist()
    W = rng.standard_normal((2, 3)).tolist()
    b1 = rng.standard_normal(3).tolist()
    V = rng.standard_normal((3, 2)).tolist()
    b2 = rng.standard_normal(2).tolist()
    r = ref.forward_backward(x, W, b1, V, b2, 1)
    loss, model = _engine_grads(x, W, b1, V, b2, 1)
    assert loss == pytest.approx(r["loss"], abs=1e-12)
    assert min(abs(v) for row in r["w_d"] for v in row) > 1e-4  # nothing trivially zero
    np.testing.assert_allclose(model[2].weight.grad.T, r["v_d"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(model[2].bias.grad, r["b2_d"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(model[0].weight.grad.T, r["w_d"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(model[0].bias.grad, r["b1_d"], rtol=0, atol=1e-12)


def test_reference_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="W must be 2 x 3"):
        ref.forward_backward([1.0, 2.0], [[1.0, 1.0]], [0.0] * 3, [[0.0] * 2] * 3, [0.0, 0.0], 0)
    with pytest.raises(ValueError, match="class 2 out of range"):
        ref.forward_backward([1.0], [[1.0]], [0.0], [[1.0, 1.0]], [0.0, 0.0], 2)

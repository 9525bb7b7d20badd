"""The gradient-check utility itself: finite differences and the error measure."""

import numpy as np
import pytest

from chainrule.gradcheck import check_module, numerical_grad, rel_error
from chainrule.nn import Linear


def test_numerical_grad_of_a_known_function():
    x = np.array([[0.5, -1.0], [2.0, 3.0]])
    idx, g = numerical_grad(lambda: float(np.sum(x**3)), x)
    np.testing.assert_allclose(g, (3 * x**2).reshape(-1)[idx], rtol=1e-8)
    assert x[0, 0] == 0.5  # restored after perturbation


def test_numerical_grad_samples_coordinates_of_large_arrays():
    x = np.zeros(10_000)
    idx, g = numerical_grad(lambda: float(np.sum(2 * x)), x, max_coords=50)
    assert idx.size == 50 and np.unique(idx).size == 50
    np.testing.assert_allclose(g, 2.0)


def test_rel_error_is_scaled_by_the_gradient_not_by_each_entry():
    a = np.array([3.0, 1e-12, -2.0])
    b = np.array([3.0, -1e-12, -2.0])  # noise on an entry that is zero in truth
    assert rel_error(a, b) < 1e-12
    c = np.array([3.0, 0.3, -2.0])  # one wrong entry, 10% of the largest gradient
    assert rel_error(a, c) == pytest.approx(0.3 / 6.0, rel=1e-6)
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(a, a[:2])


def test_check_module_flags_a_wrong_weight_gradient():
    layer = Linear(4, 3, dtype=np.float64, rng=0)
    x = np.random.default_rng(1).standard_normal((5, 4))
    assert check_module(layer, x).max_error < 1e-8

    real_backward = layer.backward

    def broken_backward(g, input_grad=True):
        out = real_backward(g, input_grad)
        layer.weight.grad *= 1.01  # 1% off
        return out

    layer.backward = broken_backward
    errors = check_module(layer, x).errors
    assert errors["weight"] > 1e-3
    assert errors["input"] < 1e-8 and errors["bias"] < 1e-8

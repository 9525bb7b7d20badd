"""The fused BLAS update (chainrule._blas) that SGD-momentum uses on large parameters."""

import numpy as np
import pytest

from chainrule import _blas
from chainrule.nn import Param
from chainrule.optim import SGD
from chainrule.optim.optimizers import BLAS_MIN_SIZE

pytestmark = pytest.mark.skipif(
    not _blas.available(np.zeros(2, np.float32)), reason="NumPy's OpenBLAS level-1 routines not found"
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_axpby_and_axpy_match_numpy(dtype):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((2, 1000)).astype(dtype)
    tol = {"rtol": 1e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-14, "atol": 1e-15}
    want = 0.5 * x + 0.9 * y
    _blas.axpby(0.5, x, 0.9, y)
    np.testing.assert_allclose(y, want, **tol)
    want = y - 0.1 * x
    _blas.axpy(-0.1, x, y)
    np.testing.assert_allclose(y, want, **tol)


def test_only_contiguous_same_dtype_float_arrays_qualify():
    a = np.zeros((4, 4), np.float32)
    assert _blas.available(a, a.copy())
    assert not _blas.available(a[:, ::2], a[:, ::2].copy())
    assert not _blas.available(a, a.astype(np.float64))
    assert not _blas.available(a.astype(np.int32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_momentum_on_a_large_parameter_follows_the_update_rule(dtype):
    rng = np.random.default_rng(1)
    shape = (BLAS_MIN_SIZE // 256 + 1, 256)  # just over the threshold: takes the BLAS path
    p = Param(rng.standard_normal(shape).astype(dtype))
    ref_p, ref_v = p.data.astype(np.float64), np.zeros(shape)
    opt = SGD([p], lr=0.05, momentum=0.9)
    for _ in range(5):
        g = rng.standard_normal(shape).astype(dtype)
        p.grad[...] = g
        opt.step()
        ref_v = 0.9 * ref_v + g  # PyTorch's convention (the first step sets v = g)
        ref_p -= 0.05 * ref_v
    assert p.data.dtype == dtype
    np.testing.assert_allclose(p.data, ref_p, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)

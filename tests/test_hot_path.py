"""The optimized training step (buffers, in-place ops, fused loss) against a plain reference.

The hot path reuses preallocated arrays inside a `Sequential`; these tests check that this never
shows: results handed out stay unchanged, standalone modules return fresh arrays, float32 stays
float32 throughout a step, and the gradients equal those of a naive implementation that allocates
everything anew.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.nn as nn
from chainrule.nn import functional as F

F32, F64 = np.float32, np.float64


def _mlp(sizes: list[int], dtype=F32, seed: int = 0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b, dtype=dtype, rng=seed + i))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _batch(n: int, d: int, c: int, dtype=F32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, c, n)


def _reference_step(
    model: nn.Sequential, x: np.ndarray, labels: np.ndarray
) -> tuple[float, list[np.ndarray], np.ndarray]:
    """Loss, parameter gradients (in `parameters()` order) and dL/dx, in float64, with fresh arrays
    and textbook formulas: no buffers, no `out=`, no fused tricks."""
    Ws = [m.weight.data.astype(F64) for m in model.modules if isinstance(m, nn.Linear)]
    bs = [m.bias.data.astype(F64) for m in model.modules if isinstance(m, nn.Linear)]
    h = [x.astype(F64)]
    for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        z = h[-1] @ W.T + b
        h.append(np.maximum(z, 0.0) if i < len(Ws) - 1 else z)
    z = h[-1]
    n = z.shape[0]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    onehot = np.eye(z.shape[1])[labels]
    loss = float(-np.mean(np.log(p[np.arange(n), labels])))
    g = (p - onehot) / n
    grads: list[np.ndarray] = []
    for i in range(len(Ws) - 1, -1, -1):
        grads = [g.T @ h[i], g.sum(axis=0)] + grads
        g = g @ Ws[i]
        if i > 0:
            g = g * (h[i] > 0)
    return loss, grads, g


def _step(model: nn.Sequential, loss_fn: nn.SoftmaxCrossEntropy, x, labels, input_grad=False):
    loss = loss_fn.forward(model.forward_nocopy(x), labels)
    gx = model.backward(loss_fn.backward(), input_grad=input_grad)
    return loss, gx


# ---- gradients against the plain reference ----------


@pytest.mark.parametrize("sizes,n", [([6, 5, 3], 1), ([6, 5, 3], 7), ([8, 7, 5, 4], 16), ([4, 3], 5)])
def test_float64_step_equals_reference(sizes: list[int], n: int) -> None:
    model = _mlp(sizes, F64, seed=n)
    x, y = _batch(n, sizes[0], sizes[-1], F64, seed=n)
    loss, gx = _step(model, nn.SoftmaxCrossEntropy(), x, y, input_grad=True)
    ref_loss, ref_grads, ref_gx = _reference_step(model, x, y)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for p, g in zip(model.parameters(), ref_grads, strict=True):
        np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gx, ref_gx, rtol=1e-10, atol=1e-14)


def test_float32_step_close_to_float64_reference() -> None:
    sizes = [20, 16, 12, 10]
    model = _mlp(sizes, F32)
    x, y = _batch(32, sizes[0], sizes[-1], F32)
    loss, gx = _step(model, nn.SoftmaxCrossEntropy(), x, y, input_grad=True)
    ref_loss, ref_grads, ref_gx = _reference_step(model, x, y)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for p, g in zip(model.parameters(), ref_grads, strict=True):
        np.testing.assert_allclose(p.grad, g, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(gx, ref_gx, rtol=1e-3, atol=1e-6)


def test_repeated_steps_and_changing_batch_size_match_fresh_models() -> None:
    """Buffers from earlier steps (of other batch sizes) never leak into later gradients."""
    sizes = [9, 8, 6, 4]
    model, loss_fn = _mlp(sizes, F64), nn.SoftmaxCrossEntropy()
    for k, n in enumerate([5, 3, 5, 1, 5]):
        x, y = _batch(n, sizes[0], sizes[-1], F64, seed=k)
        loss, gx = _step(model, loss_fn, x, y, input_grad=True)
        ref_loss, ref_grads, ref_gx = _reference_step(model, x, y)
        assert loss == pytest.approx(ref_loss, rel=1e-12)
        for p, g in zip(model.parameters(), ref_grads, strict=True):
            np.testing.assert_allclose(p.grad, g, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gx, ref_gx, rtol=1e-10, atol=1e-14)


def test_large_logits_loss_and_gradient_match_reference() -> None:
    """The fused loss stays exact where a probability underflows (|z| ~ 1e4)."""
    z = np.array([[1e4, -1e4, 0.0], [0.5, -0.25, 2.0], [-1e4, 0.0, 1e4]])
    labels = np.array([1, 2, 0])
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn.forward(z, labels)
    assert loss == pytest.approx((2e4 + (np.log(np.exp(z[1]).sum()) - 2.0) + 2e4) / 3, rel=1e-12)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loss_fn.backward(), (p - np.eye(3)[labels]) / 3, rtol=1e-12, atol=1e-15)


# ---- buffers never corrupt what the caller holds ----------


def test_sequential_forward_outputs_stay_unchanged() -> None:
    model = _mlp([5, 4, 3])
    x1, _ = _batch(6, 5, 3, seed=1)
    x2, _ = _batch(6, 5, 3, seed=2)
    y1 = model.forward(x1)
    y1_copy = y1.copy()
    y2 = model.forward(x2)
    np.testing.assert_array_equal(y1, y1_copy)  # the second forward did not write into the first output
    assert not np.shares_memory(y1, y2)
    np.testing.assert_array_equal(model.forward(x1), y1_copy)  # and recomputes the same numbers


def test_forward_nocopy_is_a_reused_buffer_but_forward_is_not() -> None:
    model = _mlp([5, 4, 3])
    x1, _ = _batch(6, 5, 3, seed=1)
    x2, _ = _batch(6, 5, 3, seed=2)
    a = model.forward_nocopy(x1)
    b = model.forward_nocopy(x2)
    assert np.shares_memory(a, b)  # documented: overwritten by the next call
    c = model.forward(x1)
    assert not np.shares_memory(c, model.forward_nocopy(x2))


def test_sequential_backward_returns_copies_and_leaves_grad_out_alone() -> None:
    model = nn.Sequential(nn.Linear(5, 4, rng=0), nn.ReLU(), nn.Linear(4, 3, rng=1), nn.ReLU())
    x, _ = _batch(6, 5, 3)
    model.forward(x)
    g = np.random.default_rng(3).standard_normal((6, 3)).astype(F32)
    g_copy = g.copy()
    gx1 = model.backward(g)
    np.testing.assert_array_equal(g, g_copy)  # the last ReLU did not mask the caller's gradient in place
    gx1_copy = gx1.copy()
    gx2 = model.backward(2 * g)
    np.testing.assert_array_equal(gx1, gx1_copy)
    np.testing.assert_allclose(gx2, 2 * gx1_copy, rtol=1e-6)


def test_standalone_modules_return_fresh_arrays() -> None:
    x1, _ = _batch(4, 3, 2, seed=1)
    x2, _ = _batch(4, 3, 2, seed=2)
    for m in (nn.Linear(3, 2, rng=0), nn.ReLU()):
        y1 = m.forward(x1)
        y1_copy = y1.copy()
        y2 = m.forward(x2)
        assert not np.shares_memory(y1, y2), type(m).__name__
        np.testing.assert_array_equal(y1, y1_copy)
        g = np.ones_like(y2)
        gx1 = m.backward(g)
        gx1_copy = gx1.copy()
        gx2 = m.backward(3 * g)
        assert not np.shares_memory(gx1, gx2), type(m).__name__
        np.testing.assert_array_equal(gx1, gx1_copy)
        np.testing.assert_array_equal(g, np.ones_like(y2))


def test_loss_backward_does_not_modify_probs() -> None:
    loss_fn = nn.SoftmaxCrossEntropy()
    z, y = _batch(5, 4, 4)
    loss_fn.forward(z, y)
    probs = loss_fn.probs.copy()
    loss_fn.backward()
    np.testing.assert_array_equal(loss_fn.probs, probs)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_model_input_is_never_modified() -> None:
    model = _mlp([5, 4, 3])
    x, y = _batch(6, 5, 3)
    x_copy = x.copy()
    _step(model, nn.SoftmaxCrossEntropy(), x, y, input_grad=True)
    np.testing.assert_array_equal(x, x_copy)


# ---- float32 stays float32 ----------


def _all_arrays(model: nn.Sequential) -> list[tuple[str, np.ndarray]]:
    out = []
    for i, m in enumerate(model.modules):
        for k, v in vars(m).items():
            if isinstance(v, np.ndarray):
                out.append((f"{i}.{k}", v))
            elif isinstance(v, dict):
                out += [(f"{i}.{k}.{kk}", vv) for kk, vv in v.items() if isinstance(vv, np.ndarray)]
    for name, p in model.named_parameters():
        out += [(name + ".data", p.data), (name + ".grad", p.grad)]
    return out


def test_float32_in_float32_everywhere() -> None:
    model, loss_fn = _mlp([7, 6, 5, 4]), nn.SoftmaxCrossEntropy()
    x, y = _batch(9, 7, 4, F32)
    logits = model.forward_nocopy(x)
    assert logits.dtype == F32
    loss = loss_fn.forward(logits, y)
    assert isinstance(loss, float)
    g = loss_fn.backward()
    assert g.dtype == F32 and loss_fn.probs.dtype == F32
    assert model.backward(g, input_grad=True).dtype == F32
    arrays = _all_arrays(model)
    floats = [(name, a.dtype) for name, a in arrays if a.dtype.kind == "f"]
    assert len(floats) > 10
    assert all(dt == F32 for _, dt in floats), [f for f in floats if f[1] != F32]
    assert all(v.dtype in (F32, np.dtype(bool)) or v.dtype.kind in "iu" for v in loss_fn._bufs.values())


def test_functional_core_keeps_float32() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 3)).astype(F32)
    labels = np.array([0, 2, 1, 1, 0])
    loss, p = F.softmax_cross_entropy_forward(z, labels)
    assert p.dtype == F32
    assert F.softmax_cross_entropy_backward(p, labels).dtype == F32
    y = F.relu_forward(z)
    assert y.dtype == F32 and F.relu_backward(z, y).dtype == F32
    W, b = rng.standard_normal((4, 3)).astype(F32), np.zeros(4, F32)
    assert F.linear_forward(z, W, b).dtype == F32
    gW, gb = np.empty_like(W), np.empty_like(b)
    gy = rng.standard_normal((5, 4)).astype(F32)
    assert F.linear_backward(gy, z, W, gW, gb).dtype == F32


def test_float64_input_to_float32_model_is_cast_down_not_up() -> None:
    model = _mlp([5, 4, 3])
    x, _ = _batch(2, 5, 3, F64)
    assert model.forward(x).dtype == F32


# ---- cheap label validation still catches everything ----------


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
def test_label_check_all_integer_dtypes(dtype) -> None:
    z = np.zeros((3, 4), F32)
    loss_fn = nn.SoftmaxCrossEntropy()
    assert loss_fn.forward(z, np.array([0, 3, 1], dtype)) == pytest.approx(np.log(4), rel=1e-6)
    with pytest.raises(ValueError, match=r"label 4 is out of range for 4 classes"):
        loss_fn.forward(z, np.array([0, 4, 1], dtype))
    if np.dtype(dtype).kind == "i":
        with pytest.raises(ValueError, match=r"label -1 is out of range for 4 classes"):
            loss_fn.forward(z, np.array([0, -1, 1], dtype))
        with pytest.raises(ValueError, match=rf"label {np.iinfo(dtype).min} is out of range"):
            loss_fn.forward(z, np.array([np.iinfo(dtype).min, 1, 1], dtype))


def test_label_check_on_a_strided_view() -> None:
    labels = np.array([0, 9, 1, 9, 2, 9])[::2]  # (3,), not contiguous
    assert nn.SoftmaxCrossEntropy().forward(np.zeros((3, 3), F32), labels) == pytest.approx(np.log(3))
    with pytest.raises(ValueError, match="label 9 is out of range"):
        nn.SoftmaxCrossEntropy().forward(np.zeros((3, 3), F32), np.array([0, 9, 1, 9, 2, 9])[1::2])


# ---- ReLU's fast path (np.maximum against cached read-only zeros) ------------------------------------


def test_relu_forward_equals_maximum_for_any_shape_and_special_values() -> None:
    rng = np.random.default_rng(5)
    for shape in [(3, 4), (50, 7), (2, 3), (1, 1), (200, 30)]:  # grows, then shrinks the cached zeros
        x = rng.standard_normal(shape).astype(F32)
        x.flat[0], x.flat[-1] = -np.inf, np.inf
        if x.size > 2:
            x.flat[1] = np.nan
        y = F.relu_forward(x)
        np.testing.assert_array_equal(y, np.maximum(x, 0))
        assert not np.signbit(y[~np.isnan(y)]).any()  # no -0.0 in ReLU outputs
    z = F._zeros((4, 5), F32)
    assert not z.flags.writeable and not z.any()
    with pytest.raises(ValueError, match="read-only"):
        z[0, 0] = 1.0


def test_bias_gradient_as_matrix_product_matches_sum() -> None:
    rng = np.random.default_rng(6)
    for n in (1, 5, 64):
        g = rng.standard_normal((n, 7)).astype(F32)
        x = rng.standard_normal((n, 3)).astype(F32)
        gW, gb = np.empty((7, 3), F32), np.empty(7, F32)
        F.linear_backward(g, x, np.zeros((7, 3), F32), gW, gb, input_grad=False)
        np.testing.assert_allclose(gb, g.sum(axis=0, dtype=F64), rtol=1e-5, atol=1e-6)
        assert gb.dtype == F32


# ---- large in-place updates split across threads (chainrule.parallel) ------------------------------


def test_split_apply_covers_every_element_once() -> None:
    from chainrule import parallel

    old = parallel.num_threads()
    try:
        for k in (1, 2, 3):
            parallel.set_num_threads(k)
            for size in (
                0,
                5,
                parallel.MIN_PARALLEL_SIZE - 1,
                parallel.MIN_PARALLEL_SIZE,
                3 * parallel.MIN_PARALLEL_SIZE + 7,
            ):
                hits = np.zeros(size, np.int8)

                def mark(a: int, b: int, hits=hits) -> None:
                    hits[a:b] += 1

                parallel.split_apply(mark, size)
                assert (hits == 1).all(), (k, size)
        with pytest.raises(ValueError, match="positive integer"):
            parallel.set_num_threads(0)
    finally:
        parallel.set_num_threads(old)


def test_split_apply_reraises_a_worker_error() -> None:
    from chainrule import parallel

    old = parallel.num_threads()
    parallel.set_num_threads(2)
    try:

        def fail_late(a: int, b: int) -> None:
            if a > 0:
                raise RuntimeError(f"part {a}")

        with pytest.raises(RuntimeError, match="part"):
            parallel.split_apply(fail_late, 2 * parallel.MIN_PARALLEL_SIZE)
    finally:
        parallel.set_num_threads(old)


@pytest.mark.parametrize("threads", [1, 2])
def test_sgd_momentum_on_a_large_parameter_matches_the_formula(threads: int) -> None:
    """The threaded path (parameters of >= MIN_PARALLEL_SIZE elements) gives the same numbers."""
    from chainrule import parallel
    from chainrule.nn.module import Param
    from chainrule.optim import SGD

    old = parallel.num_threads()
    parallel.set_num_threads(threads)
    try:
        rng = np.random.default_rng(7)
        shape = (1024, parallel.MIN_PARALLEL_SIZE // 1024 + 3)
        p = Param(rng.standard_normal(shape).astype(F32))
        small = Param(rng.standard_normal(5).astype(F32))
        opt = SGD([p, small], lr=0.05, momentum=0.9)
        ref_p, ref_v = p.data.astype(F64), np.zeros(shape)
        for _ in range(3):
            g = rng.standard_normal(shape).astype(F32)
            p.grad[...] = g
            small.grad[...] = 1.0
            opt.step()
            ref_v = 0.9 * ref_v + g
            ref_p = ref_p - 0.05 * ref_v
        np.testing.assert_allclose(p.data, ref_p, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(opt.state["momentum_buffer"][0], ref_v, rtol=1e-5, atol=1e-5)
        assert p.data.dtype == F32
    finally:
        parallel.set_num_threads(old)

"""BatchNorm three ways (seeds 000/001, Section 3): autograd, a hand-written autograd.Function and
its module, against torch.nn.BatchNorm1d and chainrule's NumPy BatchNorm1d, in float64."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.nn as cnn

torch = pytest.importorskip("torch")
from chainrule.torch_ref import (  # noqa: E402
    BATCH_NORM_IMPLS,
    BatchNormAutograd,
    BatchNormFunction,
    BatchNormManual,
    bn_state_name_map,
    copy_from_torch,
    to_torch,
)

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

F64 = torch.float64
TOL = 1e-10


def _inputs(n: int, d: int, seed: int = 0, grads: tuple[bool, bool, bool] = (True, True, True)):
    """x (N, D) with per-feature offsets and scales, gamma away from 1, beta away from 0."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=F64) * torch.linspace(0.5, 3, d, dtype=F64) + 2.0
    gamma = torch.rand(d, generator=gen, dtype=F64) * 1.5 + 0.5
    beta = torch.randn(d, generator=gen, dtype=F64)
    return tuple(t.requires_grad_(g) for t, g in zip((x, gamma, beta), grads, strict=True))


# ---------------------------------------------------------------- the Function: gradcheck


@pytest.mark.parametrize("shape", [(2, 1), (3, 1), (3, 4), (8, 5), (4, 200)], ids=str)
@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_function_gradcheck(shape: tuple[int, int], eps: float) -> None:
    x, gamma, beta = _inputs(*shape, seed=shape[0] * 1000 + shape[1])
    assert torch.autograd.gradcheck(lambda x, g, b: BatchNormFunction.apply(x, g, b, eps), (x, gamma, beta))


@pytest.mark.parametrize(
    "grads", [(True, False, False), (False, True, False), (False, False, True), (False, True, True)]
)
def test_function_respects_needs_input_grad(grads: tuple[bool, bool, bool]) -> None:
    x, gamma, beta = _inputs(5, 3, seed=1, grads=grads)
    assert torch.autograd.gradcheck(lambda *a: BatchNormFunction.apply(*a, 1e-5), (x, gamma, beta))
    # the backward's own return value: None exactly where no gradient was asked for, and for eps
    y = BatchNormFunction.apply(x, gamma, beta, 1e-5)
    returned = y.grad_fn.apply(torch.randn(5, 3, dtype=F64))
    assert len(returned) == 4 and returned[3] is None
    assert [r is not None for r in returned[:3]] == list(grads)


def test_function_saves_xhat_inv_std_gamma_not_x() -> None:
    x, gamma, beta = _inputs(6, 4, seed=2)
    y = BatchNormFunction.apply(x, gamma, beta, 1e-5)
    saved = y.grad_fn.saved_tensors
    assert len(saved) == 3
    xhat, inv_std, saved_gamma = saved
    assert saved_gamma is gamma or torch.equal(saved_gamma, gamma)
    assert all(t.data_ptr() != x.data_ptr() for t in saved)
    mean, var = x.detach().mean(0), x.detach().var(0, unbiased=False)
    torch.testing.assert_close(inv_std, 1 / torch.sqrt(var + 1e-5), rtol=1e-12, atol=0)
    torch.testing.assert_close(xhat, (x.detach() - mean) * inv_std, rtol=1e-12, atol=1e-14)


def test_function_is_once_differentiable() -> None:
    x, gamma, beta = _inputs(4, 3, seed=3)
    y = BatchNormFunction.apply(x, gamma, beta, 1e-5)
    (gx,) = torch.autograd.grad((y**3).sum(), x, create_graph=True)
    with pytest.raises(
        RuntimeError, match="once_differentiable"
    ):  # a double backward must not silently return a wrong answer
        gx.sum().backward()


# ---------------------------------------------------------------- the five batch norms agree


def _run_torch(module_or_fn, x: torch.Tensor, dy: torch.Tensor, params):
    """y, dx and the gradients of `params` for L = sum(y * dy)."""
    x = x.detach().clone().requires_grad_(True)
    y = module_or_fn(x)
    grads = torch.autograd.grad(y, [x, *params], grad_outputs=dy)
    return [y.detach().numpy(), *(g.numpy() for g in grads)]


def _five_ways(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, dy: torch.Tensor, eps: float):
    """{name: [y, dx, dgamma, dbeta]} for the five implementations, same gamma/beta."""
    d = x.shape[1]
    out = {}
    for name, cls in (("autograd", BatchNormAutograd), ("manual", BatchNormManual)):
        m = cls(d, eps, dtype=F64)
        with torch.no_grad():
            m.gamma.copy_(gamma)
            m.beta.copy_(beta)
        out[name] = _run_torch(m, x, dy, [m.gamma, m.beta])
    g, b = gamma.detach().clone().requires_grad_(), beta.detach().clone().requires_grad_()
    out["function"] = _run_torch(lambda t: BatchNormFunction.apply(t, g, b, eps), x, dy, [g, b])
    tbn = torch.nn.BatchNorm1d(d, eps=eps, dtype=F64)
    with torch.no_grad():
        tbn.weight.copy_(gamma)
        tbn.bias.copy_(beta)
    out["torch"] = _run_torch(tbn, x, dy, [tbn.weight, tbn.bias])
    ours = cnn.BatchNorm1d(d, eps=eps, dtype=np.float64)
    ours.weight.data[:] = gamma.detach().numpy()
    ours.bias.data[:] = beta.detach().numpy()
    y = ours.forward(x.detach().numpy())
    dx = ours.backward(dy.numpy())
    out["numpy"] = [y, dx, ours.weight.grad.copy(), ours.bias.grad.copy()]
    return out


def _assert_agree(results: dict[str, list[np.ndarray]], reference: str = "torch") -> None:
    for name, arrays in results.items():
        for what, a, r in zip(("y", "dx", "dgamma", "dbeta"), arrays, results[reference], strict=True):
            np.testing.assert_allclose(a, r, rtol=TOL, atol=TOL, err_msg=f"{name}: {what}")


@pytest.mark.parametrize("shape", [(2, 3), (3, 1), (16, 7), (64, 100)], ids=str)
@pytest.mark.parametrize("eps", [1e-5, 1e-2])
def test_five_batch_norms_agree_in_training(shape: tuple[int, int], eps: float) -> None:
    x, gamma, beta = _inputs(*shape, seed=7, grads=(False, False, False))
    dy = torch.randn(*shape, generator=torch.Generator().manual_seed(8), dtype=F64)
    results = _five_ways(x, gamma, beta, dy, eps)
    assert sorted(results) == ["autograd", "function", "manual", "numpy", "torch"]
    # not trivially equal: the output is not the input, and every gradient is non-zero
    y, dx, dgamma, dbeta = results["torch"]
    assert not np.allclose(y, x.numpy())
    assert np.abs(dgamma).max() > 1e-3 and np.abs(dbeta).max() > 1e-3
    # (with N = 2, xhat = +-sqrt(var / (var + eps)) hardly depends on x: dx is ~0 there)
    assert np.abs(dx).max() > (1e-3 if shape[0] > 2 else 0.0)
    _assert_agree(results)


class _WrongBackward(BatchNormFunction):
    """The classic mistake: the variance treated as a constant (the xhat * sum(dy * xhat) term dropped)."""

    @staticmethod
    def backward(ctx, dy):
        xhat, inv_std, gamma = ctx.saved_tensors
        n = dy.shape[0]
        dx = (gamma * inv_std / n) * (n * dy - dy.sum(0))
        return dx, (dy * xhat).sum(0), dy.sum(0), None


def test_a_wrong_backward_is_caught() -> None:
    """The comparisons above can fail: a backward missing one term of eq. 20 is caught by both the
    comparison with torch.nn.BatchNorm1d and gradcheck, while its forward still agrees."""
    x, gamma, beta = _inputs(8, 4, seed=9, grads=(False, False, False))
    dy = torch.randn(8, 4, generator=torch.Generator().manual_seed(10), dtype=F64)
    results = _five_ways(x, gamma, beta, dy, 1e-5)
    g, b = gamma.clone().requires_grad_(), beta.clone().requires_grad_()
    results["wrong"] = _run_torch(lambda t: _WrongBackward.apply(t, g, b, 1e-5), x, dy, [g, b])
    np.testing.assert_allclose(results["wrong"][0], results["torch"][0], rtol=TOL, atol=TOL)
    with pytest.raises(AssertionError, match="wrong: dx"):
        _assert_agree(results)
    assert np.abs(results["wrong"][1] - results["torch"][1]).max() > 1e-2
    args = (x.clone().requires_grad_(), g, b)
    assert not torch.autograd.gradcheck(
        lambda *a: _WrongBackward.apply(*a, 1e-5), args, raise_exception=False
    )


def _four_modules(d: int, eps: float, momentum: float):
    """The four modules with running statistics, same random gamma/beta."""
    _, gamma, beta = _inputs(2, d, seed=11, grads=(False, False, False))
    autograd_bn = BatchNormAutograd(d, eps, momentum=momentum, dtype=F64)
    manual_bn = BatchNormManual(d, eps, momentum=momentum, dtype=F64)
    torch_bn = torch.nn.BatchNorm1d(d, eps=eps, momentum=momentum, dtype=F64)
    numpy_bn = cnn.BatchNorm1d(d, eps=eps, momentum=momentum, dtype=np.float64)
    with torch.no_grad():
        for w, b in ((autograd_bn.gamma, autograd_bn.beta), (manual_bn.gamma, manual_bn.beta)):
            w.copy_(gamma)
            b.copy_(beta)
        torch_bn.weight.copy_(gamma)
        torch_bn.bias.copy_(beta)
    numpy_bn.weight.data[:] = gamma.numpy()
    numpy_bn.bias.data[:] = beta.numpy()
    return {"autograd": autograd_bn, "manual": manual_bn, "torch": torch_bn, "numpy": numpy_bn}


def _forward(module, x: np.ndarray) -> np.ndarray:
    if isinstance(module, cnn.Module):
        return module.forward(x)
    return module(torch.from_numpy(x)).detach().numpy()


@pytest.mark.parametrize("momentum", [0.1, 0.3])
def test_running_stats_and_eval_agree(momentum: float) -> None:
    d = 6
    modules = _four_modules(d, 1e-5, momentum)
    rng = np.random.default_rng(12)
    for step in range(5):
        x = rng.standard_normal((4 + 3 * step, d)) * (step + 1) + step  # batch sizes 4..16
        for m in modules.values():
            _forward(m, x)
    ref = modules["torch"]
    assert int(ref.num_batches_tracked) == 5
    # the statistics really moved, and the variance is the unbiased one
    assert np.abs(ref.running_mean.numpy()).min() > 1e-2 and np.abs(ref.running_var.numpy() - 1).min() > 1e-2
    for name, m in modules.items():
        for buf in ("running_mean", "running_var"):
            mine = getattr(m, buf)
            mine = mine if isinstance(mine, np.ndarray) else mine.numpy()
            np.testing.assert_allclose(mine, getattr(ref, buf).numpy(), rtol=1e-12, atol=0, err_msg=name)
        assert int(m.num_batches_tracked) == 5, name
    # eval: running statistics used, left alone, and a batch of one is fine
    x_eval = rng.standard_normal((7, d))
    for m in modules.values():
        m.eval()
    outputs = {name: _forward(m, x_eval) for name, m in modules.items()}
    for name, y in outputs.items():
        np.testing.assert_allclose(y, outputs["torch"], rtol=TOL, atol=TOL, err_msg=name)
        np.testing.assert_allclose(_forward(modules[name], x_eval[:1]), y[:1], rtol=TOL, atol=TOL)
    assert all(int(m.num_batches_tracked) == 5 for m in modules.values())
    # eval-mode gradient: dL/dx = dy * gamma / sqrt(running_var + eps) for the torch modules
    dy = rng.standard_normal((7, d))
    scale = ref.weight.detach().numpy() / np.sqrt(ref.running_var.numpy() + 1e-5)
    for name in ("autograd", "manual", "torch"):
        grads = _run_torch(modules[name], torch.from_numpy(x_eval), torch.from_numpy(dy), [])
        np.testing.assert_allclose(grads[1], dy * scale, rtol=TOL, atol=TOL, err_msg=name)


def test_defaults_match_torch() -> None:
    for cls in (BatchNormAutograd, BatchNormManual):
        m = cls(3)
        ref = torch.nn.BatchNorm1d(3)
        assert m.eps == ref.eps and m.momentum == ref.momentum and m.training
        assert dict(m.named_parameters()).keys() == {"gamma", "beta"}
        torch.testing.assert_close(m.gamma.detach(), torch.ones(3))
        torch.testing.assert_close(m.beta.detach(), torch.zeros(3))
        assert dict(m.named_buffers()).keys() == dict(ref.named_buffers()).keys()
        for name, buf in ref.named_buffers():
            torch.testing.assert_close(getattr(m, name), buf)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("cls", [BatchNormAutograd, BatchNormManual])
def test_bad_input_is_a_clear_value_error(cls) -> None:
    m = cls(4, dtype=F64)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\), got \(4,\)"):
        m(torch.zeros(4, dtype=F64))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\), got \(5, 3\)"):
        m(torch.zeros(5, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\), got \(2, 4, 1\)"):
        m(torch.zeros(2, 4, 1, dtype=F64))
    with pytest.raises(ValueError, match=r"training needs at least 2 rows.*\(1, 4\)"):
        m(torch.zeros(1, 4, dtype=F64))
    assert int(m.num_batches_tracked) == 0  # nothing updated by the refused batches
    m.eval()
    assert m(torch.zeros(1, 4, dtype=F64)).shape == (1, 4)
    for bad in ({"n_neurons": 0}, {"n_neurons": 3, "eps": 0.0}, {"n_neurons": 3, "momentum": 1.5}):
        with pytest.raises(ValueError, match=cls.__name__):
            cls(**bad)


def test_function_bad_input() -> None:
    gamma, beta = torch.ones(3, dtype=F64), torch.zeros(3, dtype=F64)
    with pytest.raises(ValueError, match=r"at least 2 rows.*\(1, 3\)"):
        BatchNormFunction.apply(torch.zeros(1, 3, dtype=F64), gamma, beta, 1e-5)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, D\), got \(3,\)"):
        BatchNormFunction.apply(torch.zeros(3, dtype=F64), gamma, beta, 1e-5)
    with pytest.raises(ValueError, match=r"gamma and beta must have shape \(4,\)"):
        BatchNormFunction.apply(torch.zeros(2, 4, dtype=F64), gamma, beta, 1e-5)


# ---------------------------------------------------------------- to_torch / copy_from_torch


def _bn_mlp(seed: int = 0) -> cnn.MLP:
    """An MLP with two BatchNorm1d layers carrying non-default gamma, beta and running statistics."""
    model = cnn.MLP(5, [6, 4], 3, batch_norm=True, activation="tanh", dtype=np.float64, seed=seed)
    rng = np.random.default_rng(seed)
    for m in model.children():
        if isinstance(m, cnn.BatchNorm1d):
            m.weight.data[:] = rng.uniform(0.5, 2, m.num_features)
            m.bias.data[:] = rng.standard_normal(m.num_features)
            m.running_mean[:] = rng.standard_normal(m.num_features)
            m.running_var[:] = rng.uniform(0.3, 3, m.num_features)
            m.num_batches_tracked[...] = 3
    return model


EXPECTED_BN = {"torch": torch.nn.BatchNorm1d, "autograd": BatchNormAutograd, "manual": BatchNormManual}


@pytest.mark.parametrize("impl", list(BATCH_NORM_IMPLS))
def test_to_torch_and_back_with_each_batch_norm(impl: str) -> None:
    model = _bn_mlp()
    tm = to_torch(model, batch_norm_impl=impl)
    assert [type(m) for m in tm if isinstance(m, tuple(EXPECTED_BN.values()))] == [EXPECTED_BN[impl]] * 2
    rename = bn_state_name_map(tm)
    assert rename == ({} if impl == "torch" else {"1.gamma": "1.weight", "1.beta": "1.bias",
                                                 "4.gamma": "4.weight", "4.beta": "4.bias"})  # fmt: skip
    # the same state under chainrule's names
    state = {rename.get(k, k): v.numpy() for k, v in tm.state_dict().items()}
    assert state.keys() == model.state_dict().keys()
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(state[name], value, err_msg=name)
    # the same outputs and parameter gradients, in training mode (batch statistics) and in eval mode
    rng = np.random.default_rng(1)
    for training in (True, False):
        model.train(training)
        tm.train(training)
        x, dy = rng.standard_normal((9, 5)), rng.standard_normal((9, 3))
        y = model.forward(x)
        model.backward(dy)
        tm.zero_grad(set_to_none=True)
        yt = tm(torch.from_numpy(x))
        yt.backward(torch.from_numpy(dy))
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=TOL, atol=TOL)
        grads = {rename.get(k, k): p.grad.numpy() for k, p in tm.named_parameters()}
        for name, p in model.named_parameters():
            np.testing.assert_allclose(p.grad, grads[name], rtol=TOL, atol=TOL, err_msg=name)
    # train the torch twin a few steps (changes gamma, beta and the running statistics) and copy back
    tm.train()
    opt = torch.optim.SGD(tm.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        tm(torch.from_numpy(rng.standard_normal((8, 5)))).square().mean().backward()
        opt.step()
    copy_from_torch(tm, model)
    state = {rename.get(k, k): v.numpy() for k, v in tm.state_dict().items()}
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)
    assert int(model[1].num_batches_tracked) == 3 + 4  # the training-mode check above + 3 steps
    model.eval()
    tm.eval()
    x = rng.standard_normal((4, 5))
    np.testing.assert_allclose(model.forward(x), tm(torch.from_numpy(x)).detach().numpy(), rtol=TOL, atol=TOL)


def test_to_torch_rejects_bad_batch_norm_impl() -> None:
    with pytest.raises(ValueError, match=r"'numpy'.*\['torch', 'autograd', 'manual'\]"):
        to_torch(_bn_mlp(), batch_norm_impl="numpy")
    with pytest.raises(ValueError, match="needs an affine BatchNorm1d"):
        to_torch(cnn.BatchNorm1d(3, affine=False), batch_norm_impl="manual")
    # a layer without batch norm takes any valid impl
    assert isinstance(to_torch(cnn.Linear(2, 3), batch_norm_impl="autograd"), torch.nn.Linear)


def test_to_torch_keeps_float32_and_eps_momentum() -> None:
    bn = cnn.BatchNorm1d(3, eps=1e-3, momentum=0.25, dtype=np.float32)
    for impl in ("autograd", "manual"):
        t = to_torch(bn, batch_norm_impl=impl)
        assert (t.eps, t.momentum, t.gamma.dtype, t.running_var.dtype) == (
            1e-3,
            0.25,
            torch.float32,
            torch.float32,
        )


@pytest.mark.parametrize("cls", [BatchNormAutograd, BatchNormManual])
def test_low_precision_input_is_normalized_in_the_parameter_dtype(cls) -> None:
    """bf16 activations (autocast) are normalized in float32, like torch.nn.BatchNorm1d does it."""
    x16 = (torch.randn(32, 5, generator=torch.Generator().manual_seed(13)) * 50 + 1000).bfloat16()
    x16.requires_grad_(True)
    m, ref = cls(5), torch.nn.BatchNorm1d(5)
    y = m(x16)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, ref(x16.detach().float()), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.running_var, ref.running_var, rtol=1e-5, atol=0)
    y.square().sum().backward()
    assert x16.grad is not None and x16.grad.dtype == torch.bfloat16

"""Each module's outputs and gradients against PyTorch autograd, in float64."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.nn as nn

torch = pytest.importorskip("torch")
from chainrule.torch_ref import copy_from_torch, to_torch  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]


F64 = np.float64
RTOL, ATOL = 1e-10, 1e-12


def _t(a: np.ndarray, grad: bool = False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _compare(ours: nn.Module, theirs, x: np.ndarray, seed: int = 0) -> None:
    """Forward output, dL/dx and every parameter gradient for L = sum(out * R)."""
    R = np.random.default_rng(seed).standard_normal(ours.forward(x).shape)
    y = ours.forward(x)
    gx = ours.backward(R)
    theirs.zero_grad(set_to_none=True)  # torch accumulates; ours overwrites
    xt = _t(x, grad=True)
    yt = theirs(xt)
    (yt * _t(R)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=RTOL, atol=ATOL)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad, theirs_params[name].grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=name
        )
    assert len(theirs_params) == len(ours.parameters())


def _linear_pair(n_in: int, n_out: int, bias: bool, seed: int):
    """A chainrule Linear and a torch Linear of the same sizes; the weights are copied, the sizes
    are the test's."""
    ours = nn.Linear(n_in, n_out, bias=bias, dtype=F64, rng=seed)
    return ours, _with_our_state(torch.nn.Linear(n_in, n_out, bias=bias, dtype=torch.float64), ours)


def _with_our_state(theirs, ours: nn.Module):
    """`theirs` (built from the test's arguments) with our module's weights, buffers and mode."""
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    theirs.train(ours.training)
    return theirs


# Each torch module is built from the test's own arguments (not read back from chainrule's
# attributes), so a chainrule module that ignores or misstores an argument disagrees with torch.
MODULES = {
    "linear": lambda: _linear_pair(6, 4, True, 0),
    "linear_nobias": lambda: _linear_pair(6, 3, False, 1),
    "relu": lambda: (nn.ReLU(), torch.nn.ReLU()),
    "leaky_relu": lambda: (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    "elu": lambda: (nn.ELU(1.3), torch.nn.ELU(1.3)),
    "sigmoid": lambda: (nn.Sigmoid(), torch.nn.Sigmoid()),
    "tanh": lambda: (nn.Tanh(), torch.nn.Tanh()),
    "softmax": lambda: (nn.Softmax(), torch.nn.Softmax(dim=-1)),
}


@pytest.mark.parametrize("n", [1, 5, 64])
@pytest.mark.parametrize("name", list(MODULES))
def test_module_matches_torch(name: str, n: int) -> None:
    ours, theirs = MODULES[name]()
    x = np.random.default_rng(n).standard_normal((n, 6)) * 3
    _compare(ours, theirs, x, seed=n)


def test_to_torch_carries_every_hyperparameter() -> None:
    """What the comparison tests above no longer go through: `to_torch` itself."""
    assert to_torch(nn.LeakyReLU(0.2)).negative_slope == 0.2
    assert to_torch(nn.ELU(1.3)).alpha == 1.3
    assert to_torch(nn.Dropout(0.3)).p == 0.3
    linear = to_torch(nn.Linear(6, 4, bias=False, dtype=F64, rng=0))
    assert (linear.in_features, linear.out_features, linear.bias) == (6, 4, None)
    for impl in ("torch", "autograd", "manual"):
        bn = to_torch(nn.BatchNorm1d(5, eps=1e-3, momentum=0.2, dtype=F64), batch_norm_impl=impl)
        assert (bn.eps, bn.momentum) == (1e-3, 0.2), impl


def test_sigmoid_and_elu_extreme_inputs_match_torch() -> None:
    x = np.array([[-800.0, -40.0, -1e-3, 0.0, 1e-3, 40.0, 800.0]])
    pairs = ((nn.Sigmoid(), torch.nn.Sigmoid()), (nn.ELU(), torch.nn.ELU()), (nn.Tanh(), torch.nn.Tanh()))
    for ours, theirs in pairs:
        y = ours.forward(x)
        assert np.isfinite(y).all()
        _compare(ours, theirs, x)


def _batchnorm_pair(ours: nn.BatchNorm1d, num_features: int, **torch_args):
    return _with_our_state(torch.nn.BatchNorm1d(num_features, dtype=torch.float64, **torch_args), ours)


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_train_matches_torch_over_steps(affine: bool) -> None:
    rng = np.random.default_rng(0)
    ours = nn.BatchNorm1d(5, eps=1e-3, momentum=0.2, affine=affine, dtype=F64)
    if affine:
        ours.weight.data[:] = rng.uniform(0.5, 2, 5)
        ours.bias.data[:] = rng.standard_normal(5)
    theirs = _batchnorm_pair(ours, 5, eps=1e-3, momentum=0.2, affine=affine)
    for step in range(6):
        x = rng.standard_normal((8 + step, 5)) * (step + 1) + step
        _compare(ours, theirs, x, seed=step)
        # _compare runs our forward twice per step (once for R's shape), torch's once: the running
        # statistics are compared below, on a second pair fed each batch once
        assert int(ours.num_batches_tracked) == 2 * (step + 1)
    # the running statistics after the same sequence of batches, fed once each
    ours2 = nn.BatchNorm1d(5, eps=1e-3, momentum=0.2, affine=affine, dtype=F64)
    theirs2 = _batchnorm_pair(ours2, 5, eps=1e-3, momentum=0.2, affine=affine)
    rng = np.random.default_rng(1)
    for step in range(6):
        x = rng.standard_normal((8 + step, 5)) * (step + 1) + step
        ours2.forward(x)
        theirs2(_t(x))
    np.testing.assert_allclose(ours2.running_mean, theirs2.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours2.running_var, theirs2.running_var.numpy(), rtol=1e-12)
    assert int(ours2.num_batches_tracked) == int(theirs2.num_batches_tracked) == 6


def test_batchnorm_eval_matches_torch() -> None:
    rng = np.random.default_rng(3)
    ours = nn.BatchNorm1d(4, dtype=F64)
    ours.weight.data[:] = rng.uniform(0.5, 2, 4)
    ours.bias.data[:] = rng.standard_normal(4)
    ours.running_mean[:] = rng.standard_normal(4)
    ours.running_var[:] = rng.uniform(0.2, 3, 4)
    ours.eval()
    theirs = _batchnorm_pair(ours, 4)  # the defaults on both sides: eps 1e-5, momentum 0.1
    assert not theirs.training
    for n in (1, 7):
        _compare(ours, theirs, rng.standard_normal((n, 4)), seed=n)
    np.testing.assert_array_equal(ours.num_batches_tracked, 0)  # eval does not touch the statistics


def test_dropout_matches_torch_given_the_mask() -> None:
    """Masks come from different generators, so compare against torch on our mask: y = x * m,
    dL/dx = g * m with m in {0, 1/(1-p)}; and eval mode is the identity on both sides."""
    p = 0.3
    ours = nn.Dropout(p, seed=0)
    x = np.random.default_rng(0).standard_normal((50, 40))
    y = ours.forward(x)
    mask = ours._mask.copy()
    assert set(np.unique(mask)) <= {0.0, 1 / (1 - p)}
    assert abs((mask == 0).mean() - p) < 0.03  # 2000 draws
    g = np.random.default_rng(1).standard_normal(x.shape)
    gx = ours.backward(g)
    xt = _t(x, grad=True)
    (xt * _t(mask) * _t(g)).sum().backward()
    np.testing.assert_allclose(y, x * mask, rtol=RTOL)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=RTOL)
    ours.eval()
    theirs = torch.nn.Dropout(p).eval()
    np.testing.assert_array_equal(ours.forward(x), theirs(_t(x)).numpy())
    np.testing.assert_array_equal(ours.backward(g), g)


def test_dropout_seeded_and_reseedable() -> None:
    x = np.ones((4, 6))
    a, b = nn.Dropout(0.5, seed=7), nn.Dropout(0.5, seed=7)
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))
    assert not np.array_equal(first, a.forward(x)), "a fresh mask each forward"
    a.reseed(7)
    np.testing.assert_array_equal(first, a.forward(x))
    np.testing.assert_array_equal(nn.Dropout(1.0).forward(x), np.zeros_like(x))


# ---- losses ---------------------------------------------------------------------------------------


def _probs(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    z = rng.standard_normal((n, c))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("soft", [False, True])
def test_softmax_cross_entropy_matches_torch(soft: bool) -> None:
    rng = np.random.default_rng(4)
    z = rng.standard_normal((9, 5)) * 4
    target = _probs(rng, 9, 5) if soft else rng.integers(0, 5, 9)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn.forward(z, target)
    g = loss_fn.backward()
    zt = _t(z, grad=True)
    tt = _t(target) if soft else torch.tensor(target)
    lt = torch.nn.functional.cross_entropy(zt, tt)
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("soft", [False, True])
def test_cross_entropy_on_probabilities_matches_torch(soft: bool) -> None:
    rng = np.random.default_rng(5)
    probs = _probs(rng, 7, 4)
    target = _probs(rng, 7, 4) if soft else rng.integers(0, 4, 7)
    onehot = target if soft else np.eye(4)[target]
    loss_fn = nn.CrossEntropy()
    loss = loss_fn.forward(probs, target)
    g = loss_fn.backward()
    pt = _t(probs, grad=True)
    lt = -(torch.log(pt) * _t(onehot)).sum(dim=1).mean()
    lt.backward()
    assert loss == pytest.approx(lt.item(), rel=1e-12)
    np.testing.assert_allclose(g, pt.grad.numpy(), rtol=RTOL, atol=ATOL)
    # and through Softmax it equals torch's cross_entropy on the logits
    z = rng.standard_normal((7, 4))
    sm = nn.Softmax()
    loss2 = loss_fn.forward(sm.forward(z), target)
    gz = sm.backward(loss_fn.backward())
    zt = _t(z, grad=True)
    lt2 = torch.nn.functional.cross_entropy(zt, _t(onehot) if soft else torch.tensor(target))
    lt2.backward()
    assert loss2 == pytest.approx(lt2.item(), rel=1e-12)
    np.testing.assert_allclose(gz, zt.grad.numpy(), rtol=1e-9, atol=ATOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_stable_for_logits_1e4(dtype) -> None:
    """Logits of magnitude 1e4: the loss is finite and exact, the gradient matches torch."""
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3], [3e3, 3e3, -1e4], [1e4, 1e4 - 1, -1e4]], dtype)
    labels = np.array([1, 1, 0, 1])
    loss_fn = nn.SoftmaxCrossEntropy()
    loss = loss_fn.forward(z, labels)
    g = loss_fn.backward()
    zt = torch.tensor(z.astype(np.float64), requires_grad=True)
    lt = torch.nn.functional.cross_entropy(zt, torch.tensor(labels))
    lt.backward()
    assert np.isfinite(loss) and np.isfinite(g).all()
    # row losses: 2e4, 0, log 2, 1 + log(1 + e^-1)
    expected = (2e4 + 0.0 + np.log(2) + 1 + np.log1p(np.exp(-1))) / 4
    assert loss == pytest.approx(expected, rel=1e-6)
    assert loss == pytest.approx(lt.item(), rel=1e-6)
    np.testing.assert_allclose(g, zt.grad.numpy(), rtol=1e-5, atol=1e-7)
    # soft targets through the same logits
    soft = np.eye(3, dtype=dtype)[labels]
    assert loss_fn.forward(z, soft) == pytest.approx(expected, rel=1e-6)


def test_to_torch_and_back_round_trip() -> None:
    model = nn.MLP(5, [4, 3], 2, batch_norm=True, dropout=0.1, activation="elu", dtype=F64, seed=0)
    tm = to_torch(model)
    assert isinstance(tm, torch.nn.Sequential) and len(tm) == len(model)
    assert all(p.dtype == torch.float64 for p in tm.parameters())
    with torch.no_grad():
        for p in tm.parameters():
            p.mul_(2)
    copy_from_torch(tm, model)
    for name, p in tm.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[name], p.numpy())
    with pytest.raises(TypeError, match="no PyTorch equivalent"):
        to_torch(nn.Module())

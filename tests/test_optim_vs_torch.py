"""Optimizers: trajectories against `torch.optim` over hyperparameter grids, dtype keeping,
changing learning rates, the seeds' momentum convention, and checkpoint/resume."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from chainrule.nn import Linear, Param
from chainrule.optim import SGD, Adam, AdamW, RMSprop, make_optimizer

SHAPES = [(3, 4), (5,), (2, 3, 2), (1, 1)]
STEPS = 20


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _params(dtype=np.float64, seed=0) -> list[Param]:
    rng = np.random.default_rng(seed)
    return [Param(rng.standard_normal(s).astype(dtype)) for s in SHAPES]


def _run_against_torch(torch, ours_cls, torch_cls, kwargs, torch_kwargs=None, lrs=None, dtype=np.float64):
    """Feed identical random gradients to both for STEPS steps; return the largest relative
    difference between the parameters seen at any step."""
    torch_kwargs = kwargs if torch_kwargs is None else torch_kwargs
    rng = np.random.default_rng(1)
    ours = _params(dtype)
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ours]
    opt = ours_cls(ours, **kwargs)
    topt = torch_cls(theirs, **torch_kwargs)
    worst = 0.0
    for t in range(STEPS):
        if lrs is not None:
            opt.lr = lrs[t]
            for group in topt.param_groups:
                group["lr"] = lrs[t]
        for p, tp in zip(ours, theirs, strict=True):
            g = rng.standard_normal(p.shape).astype(dtype)
            p.grad[...] = g
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for p, tp in zip(ours, theirs, strict=True):
            ref = tp.detach().numpy()
            assert p.data.dtype == np.dtype(dtype)
            worst = max(worst, float(np.max(np.abs(p.data - ref) / np.maximum(1.0, np.abs(ref)))))
    # the parameters really moved (a test where nothing happens cannot fail)
    moved = max(float(np.max(np.abs(p.data - q.data))) for p, q in zip(ours, _params(dtype), strict=True))
    assert moved > 1e-4
    return worst


def _sgd_grid():
    for lr, mu, wd in itertools.product([0.1, 0.01], [0.0, 0.9], [0.0, 0.1]):
        variants = [(False, 0.0)] if mu == 0.0 else [(False, 0.0), (False, 0.5), (True, 0.0)]
        for nesterov, damp in variants:
            yield {"lr": lr, "momentum": mu, "nesterov": nesterov, "weight_decay": wd, "dampening": damp}


def _adam_grid():
    for lr, betas, eps, wd, ams in itertools.product(
        [1e-3, 0.1], [(0.9, 0.999), (0.5, 0.9)], [1e-8, 1e-3], [0.0, 0.1], [False, True]
    ):
        yield {"lr": lr, "betas": betas, "eps": eps, "weight_decay": wd, "amsgrad": ams}


def _rmsprop_grid():
    for lr, alpha, mu, centered, wd in itertools.product(
        [1e-2, 1e-3], [0.99, 0.9], [0.0, 0.9], [False, True], [0.0, 0.1]
    ):
        yield {"lr": lr, "alpha": alpha, "momentum": mu, "centered": centered, "weight_decay": wd}


def test_sgd_matches_torch_over_grid(torch):
    grid = list(_sgd_grid())
    assert len(grid) == 16
    for kw in grid:
        assert _run_against_torch(torch, SGD, torch.optim.SGD, kw) < 1e-10, kw


@pytest.mark.parametrize("cls_name", ["Adam", "AdamW"])
def test_adam_adamw_match_torch_over_grid(torch, cls_name):
    ours, theirs = {"Adam": (Adam, torch.optim.Adam), "AdamW": (AdamW, torch.optim.AdamW)}[cls_name]
    for kw in _adam_grid():
        assert _run_against_torch(torch, ours, theirs, kw) < 1e-10, kw


def test_rmsprop_matches_torch_over_grid(torch):
    for kw in _rmsprop_grid():
        assert _run_against_torch(torch, RMSprop, torch.optim.RMSprop, kw) < 1e-10, kw


def test_defaults_match_torch_defaults(torch):
    assert _run_against_torch(torch, Adam, torch.optim.Adam, {}) < 1e-10
    assert _run_against_torch(torch, AdamW, torch.optim.AdamW, {}) < 1e-10
    assert _run_against_torch(torch, RMSprop, torch.optim.RMSprop, {}) < 1e-10


def test_adamw_decay_is_decoupled(torch):
    """AdamW with weight decay differs from Adam with the same weight decay (else the test above
    could pass with the decay applied the wrong way in both)."""
    a, b = _params(), _params()
    oa, ob = Adam(a, lr=0.1, weight_decay=0.1), AdamW(b, lr=0.1, weight_decay=0.1)
    for p, q in zip(a, b, strict=True):
        p.grad[...] = q.grad[...] = 1.0
    oa.step()
    ob.step()
    assert max(float(np.max(np.abs(p.data - q.data))) for p, q in zip(a, b, strict=True)) > 1e-3


@pytest.mark.parametrize(
    "name,kw",
    [
        ("sgd", {"lr": 0.1, "momentum": 0.9}),
        ("nesterov", {"lr": 0.1, "weight_decay": 0.1}),
        ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
        ("adam", {"lr": 0.05, "weight_decay": 0.1}),
        ("adamw", {"lr": 0.05, "amsgrad": True}),
        ("rmsprop", {"lr": 0.01, "momentum": 0.9, "centered": True}),
    ],
)
def test_changing_lr_every_step_matches_torch(torch, name, kw):
    """A schedule sets `lr` before every step; torch gets the same lr on its param_groups."""
    cls = {"sgd": SGD, "nesterov": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}[name]
    tcls = {"sgd": torch.optim.SGD, "nesterov": torch.optim.SGD, "adam": torch.optim.Adam,
            "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop}[name]  # fmt: skip
    if name == "nesterov":
        kw = {**kw, "momentum": 0.9, "nesterov": True}
    lrs = [kw["lr"] * (0.5 + 0.5 * math.cos(math.pi * t / STEPS)) + 1e-4 * (t % 3) for t in range(STEPS)]
    assert _run_against_torch(torch, cls, tcls, kw, lrs=lrs) < 1e-10


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1),
        lambda ps: SGD(ps, lr=0.1),
        lambda ps: Adam(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
        lambda ps: AdamW(ps, lr=0.01),
        lambda ps: RMSprop(ps, lr=0.01, momentum=0.9, centered=True, weight_decay=0.1),
    ],
)
def test_float32_stays_float32(torch, make):
    """float32 parameters and every state buffer stay float32, also with NumPy float64 scalars as
    lr (as a schedule may return), and the result matches torch in float32."""
    ps = _params(np.float32)
    theirs = [torch.tensor(p.data.copy(), requires_grad=True) for p in ps]
    opt = make(ps)
    hyper = {k: v for k, v in opt.hyperparameters().items()}
    topt = {SGD: torch.optim.SGD, Adam: torch.optim.Adam, AdamW: torch.optim.AdamW,
            RMSprop: torch.optim.RMSprop}[type(opt)](theirs, **hyper)  # fmt: skip
    rng = np.random.default_rng(2)
    for t in range(STEPS):
        opt.lr = np.float64(hyper["lr"]) * np.float64(0.99) ** t
        for group in topt.param_groups:
            group["lr"] = float(opt.lr)
        for p, tp in zip(ps, theirs, strict=True):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad[...] = g
            tp.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for p, tp in zip(ps, theirs, strict=True):
        assert p.data.dtype == np.float32
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)
    for arrays in opt.state.values():
        assert all(a.dtype == np.float32 for a in arrays)
    assert type(opt.lr) is float


def test_step_does_not_modify_the_gradient():
    """Weight decay and momentum work in the optimizer's own buffers, never in `p.grad`."""
    for make in (
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1),
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
        lambda ps: Adam(ps, weight_decay=0.1),
        lambda ps: RMSprop(ps, weight_decay=0.1, centered=True, momentum=0.5),
    ):
        ps = _params()
        for p in ps:
            p.grad[...] = 0.25
        opt = make(ps)
        opt.step()
        opt.step()
        assert all(np.all(p.grad == 0.25) for p in ps)


def _seed_momentum(params0, grads, lrs, mu):
    """Seed 003's form: v <- mu v - lr g; w <- w + v."""
    ws = [w.copy() for w in params0]
    vs = [np.zeros_like(w) for w in ws]
    for gs, lr in zip(grads, lrs, strict=True):
        for w, v, g in zip(ws, vs, gs, strict=True):
            v *= mu
            v -= lr * g
            w += v
    return ws


def _ours_momentum(params0, grads, lrs, mu):
    ps = [Param(w.copy()) for w in params0]
    opt = SGD(ps, lr=lrs[0], momentum=mu)
    for gs, lr in zip(grads, lrs, strict=True):
        opt.lr = lr
        for p, g in zip(ps, gs, strict=True):
            p.grad[...] = g
        opt.step()
    return [p.data for p in ps]


def test_seed_momentum_convention_same_for_constant_lr_differs_when_lr_changes():
    rng = np.random.default_rng(3)
    w0 = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(30)]
    const = [0.05] * 30
    seed, ours = _seed_momentum(w0, grads, const, 0.9), _ours_momentum(w0, grads, const, 0.9)
    for a, b in zip(seed, ours, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    decayed = [0.05 * 0.85 ** (t // 10) for t in range(30)]
    seed, ours = _seed_momentum(w0, grads, decayed, 0.9), _ours_momentum(w0, grads, decayed, 0.9)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(seed, ours, strict=True))
    assert diff > 1e-3


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01),
        lambda ps: SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
        lambda ps: Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.01),
        lambda ps: AdamW(ps, lr=0.01),
        lambda ps: RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
    ],
)
def test_state_dict_resume_is_bit_identical(make):
    """Stop after 7 steps, save, build a fresh optimizer over fresh parameters, load, continue:
    bit-identical to an uninterrupted run (step count, hyperparameters and buffers restored)."""
    rng = np.random.default_rng(4)
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(14)]

    def run(ps, opt, gs):
        for step_grads in gs:
            for p, g in zip(ps, step_grads, strict=True):
                p.grad[...] = g
            opt.step()

    ps = _params()
    opt = make(ps)
    run(ps, opt, grads)
    straight = [p.data.copy() for p in ps]

    ps = _params()
    opt = make(ps)
    run(ps, opt, grads[:7])
    opt.lr = opt.lr * 0.5  # a schedule changed it: the saved lr must come back too
    saved_weights = [p.data.copy() for p in ps]
    saved = opt.state_dict()
    assert saved["step"] == 7
    assert all(isinstance(a, np.ndarray) for a in saved["buffers"].values())
    run(ps, opt, grads[7:])  # the saved copies must not change under the running optimizer
    expected = [p.data.copy() for p in ps]

    ps2 = [Param(w.copy()) for w in saved_weights]
    opt2 = make(ps2)
    opt2.load_state_dict(saved)
    assert opt2.step_count == 7 and opt2.lr == opt.lr
    run(ps2, opt2, grads[7:])
    for a, b in zip(ps2, expected, strict=True):
        np.testing.assert_array_equal(a.data, b)
    assert any(not np.array_equal(a, b) for a, b in zip(straight, expected, strict=True))


def test_make_optimizer_names():
    ps = _params()
    opt = make_optimizer("momentum", ps, lr=0.1)
    assert isinstance(opt, SGD) and opt.momentum == 0.9 and not opt.nesterov
    opt = make_optimizer("Nesterov", ps, lr=0.1, momentum=0.5)
    assert isinstance(opt, SGD) and opt.momentum == 0.5 and opt.nesterov
    opt = make_optimizer("sgd", ps, lr=0.1)
    assert opt.momentum == 0.0
    assert type(make_optimizer("adam", ps)) is Adam
    assert type(make_optimizer("AdamW", ps)).__name__ == "AdamW"
    assert isinstance(make_optimizer("rmsprop", ps, lr=0.001), RMSprop)


def test_optimizer_trains_a_module():
    """Given a Module, the optimizer takes its parameters; a few steps of least squares reduce
    the loss (an end-to-end use, with gradients from the layer's own backward)."""
    rng = np.random.default_rng(5)
    layer = Linear(4, 2, dtype=np.float64, rng=0)
    x = rng.standard_normal((32, 4))
    y = x @ rng.standard_normal((4, 2))
    opt = SGD(layer, lr=0.1, momentum=0.9)
    assert opt.params == layer.parameters()
    losses = []
    for _ in range(30):
        out = layer(x)
        losses.append(float(np.mean((out - y) ** 2)))
        layer.backward(2.0 * (out - y) / out.size)
        opt.step()
    assert losses[-1] < 0.1 * losses[0]

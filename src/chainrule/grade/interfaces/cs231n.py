"""Stanford CS231n assignment 2: the functional `layers.py` (affine, ReLU, softmax loss, batch
norm with its `bn_param` dict and running statistics, inverted dropout with `p` the keep
probability) and `optim.py` (sgd_momentum, rmsprop, adam with their config dicts).

A `*_backward` is graded with the cache the handout's `*_forward` builds where the handout fixes
it (affine: (x, w, b); relu: x), so a broken forward does not fail its backward; batch norm and
dropout caches are the student's own, so their backward tests run the student's forward.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn import functional as F
from chainrule.nn.module import Param
from chainrule.optim import SGD, Adam, RMSprop

from ..diagnose import INPLACE_INPUT, INPLACE_UPSTREAM, Context, compare
from ..modular import (
    FD_TOLERANCE,
    away_from_zero,
    check,
    fd_context,
    finite_diff,
    large_logits,
    scalar,
    unchanged,
)
from ..spec import Ctx, Fail, Interface, Unit, tests


def parts(value: Any, n: int, what: str) -> tuple:
    if not isinstance(value, tuple | list) or len(value) != n:
        got = type(value).__name__ + (f" of length {len(value)}" if isinstance(value, tuple | list) else "")
        raise Fail(f"{what} must return a tuple of {n}, got a {got}")
    return tuple(value)


def shaped(value: Any, shape: tuple[int, ...], what: str) -> None:
    if not isinstance(value, np.ndarray):
        raise Fail(f"{what} is a {type(value).__name__}, expected a NumPy array")
    if value.shape != shape:
        hint = f". Hint: reshape it to the input's shape {shape}" if value.size == int(np.prod(shape)) else ""
        raise Fail(f"{what} has shape {value.shape}, expected {shape}{hint}")
    if value.dtype != np.float64:
        raise Fail(f"{what} has dtype {value.dtype} for float64 input")


# ---- affine ----------------------------------------------------------------------------------------

AFFINE_CASES = (((4, 3, 2), 5), ((1, 7), 3), ((3, 1), 1), ((2, 2, 2, 2), 4))  # (x shape, M)


def _affine_case(rng: np.random.Generator, shape: tuple[int, ...], m: int):
    x = rng.standard_normal(shape)
    d = int(np.prod(shape[1:]))
    return x, rng.standard_normal((d, m)), rng.standard_normal(m)


def _affine_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    return F.linear_forward(x.reshape(x.shape[0], -1), w.T, b)  # (N, D) @ (D, M)


def _affine_ref_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray):
    x2 = x.reshape(x.shape[0], -1)
    gW = np.empty((w.shape[1], w.shape[0]))  # (M, D): chainrule's (out, in) layout
    gb = np.empty(w.shape[1])
    dx = F.linear_backward(g, x2, w.T, gW, gb)
    return dx.reshape(x.shape), gW.T, gb


def affine_forward_matches(ctx: Ctx) -> None:
    for shape, m in AFFINE_CASES:
        x, w, b = _affine_case(ctx.rng, shape, m)
        out, _ = parts(ctx.target(x.copy(), w.copy(), b.copy()), 2, "affine_forward")
        check(compare(out, _affine_ref(x, w, b), Context(f"out for x {shape}", batch=shape[0])))


def affine_forward_shape(ctx: Ctx) -> None:
    x, w, b = _affine_case(ctx.rng, (4, 3, 2), 5)
    out, _ = parts(ctx.target(x, w, b), 2, "affine_forward")
    shaped(out, (4, 5), "out")


def affine_forward_inplace(ctx: Ctx) -> None:
    x, w, b = _affine_case(ctx.rng, (4, 3, 2), 5)
    keep = [a.copy() for a in (x, w, b)]
    ctx.target(x, w, b)
    for name, a, a0 in zip("xwb", (x, w, b), keep, strict=True):
        unchanged(a0, a, INPLACE_INPUT, f"the input {name}")


def affine_backward_matches(ctx: Ctx) -> None:
    for shape, m in AFFINE_CASES:
        x, w, b = _affine_case(ctx.rng, shape, m)
        g = ctx.rng.standard_normal((shape[0], m))
        dx, dw, db = parts(ctx.target(g.copy(), (x.copy(), w.copy(), b.copy())), 3, "affine_backward")
        rdx, rdw, rdb = _affine_ref_backward(g, x, w)
        n = shape[0]
        check(compare(dx, rdx, Context(f"dx for x {shape}", "grad", n)))
        check(compare(dw, rdw, Context(f"dw for x {shape}", "weight_grad", n)))
        check(compare(db, rdb, Context(f"db for x {shape}", "weight_grad", n)))


def affine_backward_shape(ctx: Ctx) -> None:
    x, w, b = _affine_case(ctx.rng, (4, 3, 2), 5)
    dx, dw, db = parts(ctx.target(ctx.rng.standard_normal((4, 5)), (x, w, b)), 3, "affine_backward")
    shaped(dx, (4, 3, 2), "dx")
    shaped(dw, (6, 5), "dw")
    shaped(db, (5,), "db")


def affine_backward_fd(ctx: Ctx) -> None:
    x, w, b = _affine_case(ctx.rng, (3, 2, 2), 3)
    g = ctx.rng.standard_normal((3, 3))
    dx, dw, db = parts(ctx.target(g.copy(), (x, w, b)), 3, "affine_backward")
    for what, got, arr in (("dx", dx, x), ("dw", dw, w), ("db", db, b)):
        num = finite_diff(lambda: float(np.sum(_affine_ref(x, w, b) * g)), arr)
        ctx_ = Context(what, "grad", 3, against="finite differences of the affine map")
        check(compare(got, num, ctx_, FD_TOLERANCE))


def affine_backward_inplace(ctx: Ctx) -> None:
    x, w, b = _affine_case(ctx.rng, (4, 6), 5)
    g = ctx.rng.standard_normal((4, 5))
    keep = [a.copy() for a in (g, x, w, b)]
    ctx.target(g, (x, w, b))
    unchanged(keep[0], g, INPLACE_UPSTREAM, "the upstream gradient dout")
    for name, a, a0 in zip("xwb", (x, w, b), keep[1:], strict=True):
        unchanged(a0, a, INPLACE_INPUT, f"the cached {name}")


# ---- relu ------------------------------------------------------------------------------------------

SHAPES = ((5, 4), (1, 3), (4, 1), (2, 3, 2))


def relu_forward_matches(ctx: Ctx) -> None:
    for shape in SHAPES:
        x = away_from_zero(ctx.rng, shape)
        out, _ = parts(ctx.target(x.copy()), 2, "relu_forward")
        check(compare(out, F.relu_forward(x), Context(f"out for x {shape}")))


def relu_forward_shape(ctx: Ctx) -> None:
    x = away_from_zero(ctx.rng, (4, 3))
    shaped(parts(ctx.target(x), 2, "relu_forward")[0], (4, 3), "out")


def relu_forward_inplace(ctx: Ctx) -> None:
    x = away_from_zero(ctx.rng, (4, 3))
    x0 = x.copy()
    ctx.target(x)
    unchanged(x0, x, INPLACE_INPUT, "the input x")


def _relu_backward_check(ctx: Ctx, x: np.ndarray, what: str) -> None:
    g = ctx.rng.standard_normal(x.shape)
    dx = ctx.target(g.copy(), x.copy())
    ref = F.relu_backward(g, F.relu_forward(x))
    check(compare(dx, ref, Context(what, "grad", x.shape[0], zero_mask=x == 0)))


def relu_backward_matches(ctx: Ctx) -> None:
    for shape in SHAPES:
        _relu_backward_check(ctx, away_from_zero(ctx.rng, shape), f"dx for x {shape}")


def relu_backward_at_zero(ctx: Ctx) -> None:
    x = away_from_zero(ctx.rng, (4, 5))
    x[ctx.rng.random((4, 5)) < 0.4] = 0.0
    x[0, 0] = 0.0
    _relu_backward_check(ctx, x, "dx where x has zeros")


def relu_backward_fd(ctx: Ctx) -> None:
    x = away_from_zero(ctx.rng, (4, 5))
    g = ctx.rng.standard_normal((4, 5))
    dx = ctx.target(g.copy(), x.copy())
    num = finite_diff(lambda: float(np.sum(F.relu_forward(x) * g)), x)
    check(compare(dx, num, Context("dx", "grad", 4, against="finite differences of ReLU"), FD_TOLERANCE))


def relu_backward_inplace(ctx: Ctx) -> None:
    x = away_from_zero(ctx.rng, (4, 5))
    g = ctx.rng.standard_normal((4, 5))
    g0, x0 = g.copy(), x.copy()
    ctx.target(g, x)
    unchanged(g0, g, INPLACE_UPSTREAM, "the upstream gradient dout")
    unchanged(x0, x, INPLACE_INPUT, "the cached x")


# ---- softmax_loss ------------------------------------------------------------------------------------

LOSS_CASES = ((6, 4), (1, 3), (5, 1))


def _loss_ref(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    loss, p = F.softmax_cross_entropy_forward(x, y)
    return loss, F.softmax_cross_entropy_backward(p, y)


def softmax_loss_value(ctx: Ctx) -> None:
    for n, c in LOSS_CASES:
        x, y = ctx.rng.standard_normal((n, c)), ctx.rng.integers(0, c, n)
        loss, _ = parts(ctx.target(x.copy(), y.copy()), 2, "softmax_loss")
        got = scalar(loss, "loss")
        check(
            compare(
                np.array(got), np.array(_loss_ref(x, y)[0]), Context(f"the loss for x {x.shape}", "loss", n)
            )
        )


def softmax_loss_grad(ctx: Ctx) -> None:
    for n, c in LOSS_CASES:
        x, y = ctx.rng.standard_normal((n, c)), ctx.rng.integers(0, c, n)
        _, dx = parts(ctx.target(x.copy(), y.copy()), 2, "softmax_loss")
        check(compare(dx, _loss_ref(x, y)[1], Context(f"dx for x {x.shape}", "grad", n)))


def softmax_loss_fd(ctx: Ctx) -> None:
    x, y = ctx.rng.standard_normal((4, 5)), ctx.rng.integers(0, 5, 4)
    _, dx = parts(ctx.target(x.copy(), y.copy()), 2, "softmax_loss")
    num = finite_diff(lambda: scalar(ctx.target(x, y)[0], "loss"), x)
    check(compare(dx, num, fd_context("dx", 4), FD_TOLERANCE))


def softmax_loss_stable(ctx: Ctx) -> None:
    z = large_logits(ctx.rng)
    y = ctx.rng.integers(0, z.shape[1], z.shape[0])
    loss, dx = parts(ctx.target(z.copy(), y.copy()), 2, "softmax_loss")
    ref_loss, ref_dx = _loss_ref(z, y)
    rows = z.max(axis=1)
    n = z.shape[0]
    got = np.asarray(loss, np.float64).reshape(()) if np.size(loss) == 1 else loss
    check(
        compare(
            got,
            np.array(ref_loss),
            Context("the loss for logits of magnitude ~1e3", "loss", n, large_logits=True, row_max=rows),
        )
    )
    check(
        compare(
            dx, ref_dx, Context("dx for logits of magnitude ~1e3", "grad", n, large_logits=True, row_max=rows)
        )
    )


def softmax_loss_inplace(ctx: Ctx) -> None:
    x, y = ctx.rng.standard_normal((4, 5)), ctx.rng.integers(0, 5, 4)
    x0, y0 = x.copy(), y.copy()
    ctx.target(x, y)
    unchanged(x0, x, INPLACE_INPUT, "the scores x")
    unchanged(y0, y, INPLACE_INPUT, "the labels y")


# ---- batchnorm ---------------------------------------------------------------------------------------

EPS = 1e-5


def _bn_inputs(rng: np.random.Generator, n: int, d: int):
    return rng.standard_normal((n, d)) * 2 + 1, rng.standard_normal(d), rng.standard_normal(d)


def batchnorm_train_matches(ctx: Ctx) -> None:
    for n, d in ((8, 4), (5, 1), (1, 3)):
        x, gamma, beta = _bn_inputs(ctx.rng, n, d)
        out, _ = parts(
            ctx.target(x.copy(), gamma, beta, {"mode": "train", "eps": EPS}), 2, "batchnorm_forward"
        )
        ref = F.batchnorm_forward(x, gamma, beta, EPS)[0]
        check(compare(out, ref, Context(f"out in train mode for x {x.shape}", batch=n)))


def batchnorm_running_stats(ctx: Ctx) -> None:
    """Three train-mode calls with momentum 0.8 from a bn_param without running statistics:
    r <- momentum r + (1 - momentum) batch statistic (the biased variance), from zeros."""
    d = 4
    bn_param: dict[str, Any] = {"mode": "train", "eps": EPS, "momentum": 0.8}
    rm, rv = np.zeros(d), np.zeros(d)
    for step in range(3):
        x, gamma, beta = _bn_inputs(ctx.rng, 6, d)
        ctx.target(x, gamma, beta, bn_param)
        _, _, _, mean, var = F.batchnorm_forward(x, gamma, beta, EPS)
        rm, rv = 0.8 * rm + 0.2 * mean, 0.8 * rv + 0.2 * var
        for key, ref in (("running_mean", rm), ("running_var", rv)):
            if key not in bn_param:
                raise Fail(f"bn_param has no {key!r} after a train-mode call: store it back in bn_param")
            check(compare(bn_param[key], ref, Context(f"bn_param[{key!r}] after call {step + 1}")))


def batchnorm_test_mode(ctx: Ctx) -> None:
    x, gamma, beta = _bn_inputs(ctx.rng, 6, 4)
    rm, rv = ctx.rng.standard_normal(4), ctx.rng.random(4) + 0.5
    bn_param = {"mode": "test", "eps": EPS, "running_mean": rm.copy(), "running_var": rv.copy()}
    out, _ = parts(ctx.target(x.copy(), gamma, beta, bn_param), 2, "batchnorm_forward")
    ref = gamma * (x - rm) / np.sqrt(rv + EPS) + beta
    check(compare(out, ref, Context("out in test mode (running statistics)")))


def batchnorm_forward_shape(ctx: Ctx) -> None:
    x, gamma, beta = _bn_inputs(ctx.rng, 6, 4)
    shaped(parts(ctx.target(x, gamma, beta, {"mode": "train"}), 2, "batchnorm_forward")[0], (6, 4), "out")


def batchnorm_forward_inplace(ctx: Ctx) -> None:
    x, gamma, beta = _bn_inputs(ctx.rng, 6, 4)
    keep = [a.copy() for a in (x, gamma, beta)]
    ctx.target(x, gamma, beta, {"mode": "train"})
    for name, a, a0 in zip(("x", "gamma", "beta"), (x, gamma, beta), keep, strict=True):
        unchanged(a0, a, INPLACE_INPUT, f"the input {name}")


def _student_bn_forward(ctx: Ctx, x, gamma, beta):
    fwd = getattr(ctx.modules["layers.py"], "batchnorm_forward", None)
    if fwd is None:
        raise Fail("batchnorm_backward needs batchnorm_forward (for its cache), which is not in layers.py")
    return fwd


def batchnorm_backward_matches(ctx: Ctx) -> None:
    for n, d in ((8, 4), (5, 1)):
        x, gamma, beta = _bn_inputs(ctx.rng, n, d)
        fwd = _student_bn_forward(ctx, x, gamma, beta)
        _, cache = parts(
            fwd(x.copy(), gamma.copy(), beta.copy(), {"mode": "train", "eps": EPS}), 2, "batchnorm_forward"
        )
        g = ctx.rng.standard_normal((n, d))
        dx, dgamma, dbeta = parts(ctx.target(g.copy(), cache), 3, "batchnorm_backward")
        _, xhat, inv_std, _, _ = F.batchnorm_forward(x, gamma, beta, EPS)
        rg, rb = np.empty(d), np.empty(d)
        rdx = F.batchnorm_backward(g, xhat, inv_std, gamma, rg, rb)
        check(compare(dx, rdx, Context(f"dx for x {x.shape}", "grad", n)))
        check(compare(dgamma, rg, Context(f"dgamma for x {x.shape}", "weight_grad", n)))
        check(compare(dbeta, rb, Context(f"dbeta for x {x.shape}", "weight_grad", n)))


def batchnorm_backward_fd(ctx: Ctx) -> None:
    x, gamma, beta = _bn_inputs(ctx.rng, 5, 3)
    fwd = _student_bn_forward(ctx, x, gamma, beta)
    g = ctx.rng.standard_normal((5, 3))

    def loss() -> float:
        return float(np.sum(np.asarray(fwd(x, gamma, beta, {"mode": "train", "eps": EPS})[0]) * g))

    _, cache = parts(
        fwd(x.copy(), gamma.copy(), beta.copy(), {"mode": "train", "eps": EPS}), 2, "batchnorm_forward"
    )
    grads = parts(ctx.target(g.copy(), cache), 3, "batchnorm_backward")
    for what, got, arr in zip(("dx", "dgamma", "dbeta"), grads, (x, gamma, beta), strict=True):
        check(compare(got, finite_diff(loss, arr), fd_context(what, 5), FD_TOLERANCE))


def batchnorm_backward_inplace(ctx: Ctx) -> None:
    x, gamma, beta = _bn_inputs(ctx.rng, 6, 4)
    fwd = _student_bn_forward(ctx, x, gamma, beta)
    _, cache = parts(fwd(x, gamma, beta, {"mode": "train", "eps": EPS}), 2, "batchnorm_forward")
    g = ctx.rng.standard_normal((6, 4))
    g0 = g.copy()
    ctx.target(g, cache)
    unchanged(g0, g, INPLACE_UPSTREAM, "the upstream gradient dout")


# ---- dropout (p = keep probability) --------------------------------------------------------------

KEEP = 0.3


def dropout_test_mode(ctx: Ctx) -> None:
    x = ctx.rng.standard_normal((5, 4))
    out, _ = parts(ctx.target(x.copy(), {"p": KEEP, "mode": "test"}), 2, "dropout_forward")
    check(compare(out, x, Context("out in test mode (the input itself)")))


def dropout_train_mode(ctx: Ctx) -> None:
    x = 1.0 + ctx.rng.random((400, 50))
    out, _ = parts(ctx.target(x.copy(), {"p": KEEP, "mode": "train", "seed": 7}), 2, "dropout_forward")
    out = np.asarray(out, np.float64)
    if out.shape != x.shape:
        raise Fail(f"out has shape {out.shape}, expected {x.shape}")
    kept = out != 0
    frac = float(kept.mean())
    ratio = out[kept] / x[kept]
    if abs(frac - (1 - KEEP)) < 0.02 and abs(frac - KEEP) > 0.1:
        raise Fail(
            f"{frac:.1%} of the units are kept for p = {KEEP}. Hint: in this assignment p is the "
            "probability of keeping a unit (mask = rand < p), not of dropping it"
        )
    if abs(frac - KEEP) > 0.02:
        raise Fail(f"{frac:.1%} of the units are kept for p = {KEEP}; expected about {KEEP:.0%}")
    if not np.allclose(ratio, 1 / KEEP, rtol=1e-9):
        hint = ""
        if np.allclose(ratio, 1.0):
            hint = (
                ". Hint: inverted dropout divides the kept units by p in train mode, "
                "so test mode needs no scaling"
            )
        elif np.allclose(ratio, 1 / (1 - KEEP)):
            hint = ". Hint: divide the kept units by p (the keep probability), not by 1 - p"
        raise Fail(
            f"kept units are x times {np.median(ratio):.6g}, expected x / p = x times {1 / KEEP:.6g}{hint}"
        )


def dropout_seeded(ctx: Ctx) -> None:
    x = 1.0 + ctx.rng.random((20, 10))
    a, _ = parts(ctx.target(x.copy(), {"p": KEEP, "mode": "train", "seed": 11}), 2, "dropout_forward")
    b, _ = parts(ctx.target(x.copy(), {"p": KEEP, "mode": "train", "seed": 11}), 2, "dropout_forward")
    if not np.array_equal(np.asarray(a), np.asarray(b)):
        raise Fail(
            "two calls with the same dropout_param['seed'] gave different masks: "
            "call np.random.seed(dropout_param['seed']) when the key is there"
        )


def dropout_forward_inplace(ctx: Ctx) -> None:
    x = 1.0 + ctx.rng.random((6, 5))
    x0 = x.copy()
    ctx.target(x, {"p": KEEP, "mode": "train", "seed": 3})
    unchanged(x0, x, INPLACE_INPUT, "the input x")


def _student_dropout(ctx: Ctx):
    fwd = getattr(ctx.modules["layers.py"], "dropout_forward", None)
    if fwd is None:
        raise Fail("dropout_backward needs dropout_forward (for its cache), which is not in layers.py")
    return fwd


def dropout_backward_train(ctx: Ctx) -> None:
    """dx = dout * mask, the mask read off the student's own forward (out / x)."""
    x = 1.0 + ctx.rng.random((30, 8))
    out, cache = parts(
        _student_dropout(ctx)(x.copy(), {"p": KEEP, "mode": "train", "seed": 5}), 2, "dropout_forward"
    )
    g = ctx.rng.standard_normal(x.shape)
    dx = ctx.target(g.copy(), cache)
    check(
        compare(
            dx, g * (np.asarray(out, np.float64) / x), Context("dx in train mode (dout * your mask)", "grad")
        )
    )


def dropout_backward_test(ctx: Ctx) -> None:
    x = 1.0 + ctx.rng.random((6, 5))
    _, cache = parts(_student_dropout(ctx)(x.copy(), {"p": KEEP, "mode": "test"}), 2, "dropout_forward")
    g = ctx.rng.standard_normal(x.shape)
    check(compare(ctx.target(g.copy(), cache), g, Context("dx in test mode (dout itself)", "grad")))


# ---- optim.py: several steps against chainrule.optim (torch.optim's rules) -------------------------

STEPS = 5


def _steps(ctx: Ctx, config: dict[str, Any] | None, make_ref) -> None:
    w = ctx.rng.standard_normal((4, 3))
    p = Param(w.copy())
    opt = make_ref(p)
    cfg = config
    for step in range(1, STEPS + 1 if config is not None else 2):
        dw = ctx.rng.standard_normal(w.shape)
        next_w, cfg = parts(ctx.target(w.copy(), dw.copy(), cfg), 2, ctx.target.__name__)
        p.grad[...] = dw
        opt.step()
        check(compare(next_w, p.data, Context(f"next_w after step {step}")))
        if not isinstance(cfg, dict):
            raise Fail(f"the returned config is a {type(cfg).__name__}, not a dict")
        w = np.asarray(next_w, np.float64)
        p.data[...] = w


SGD_CONFIG = {"learning_rate": 0.05, "momentum": 0.8}
RMS_CONFIG = {"learning_rate": 0.02, "decay_rate": 0.9, "epsilon": 1e-8}
ADAM_CONFIG = {"learning_rate": 0.02, "beta1": 0.8, "beta2": 0.9, "epsilon": 1e-8}


def sgd_momentum_steps(ctx: Ctx) -> None:
    _steps(ctx, dict(SGD_CONFIG), lambda p: SGD([p], lr=0.05, momentum=0.8))


def sgd_momentum_defaults(ctx: Ctx) -> None:
    _steps(ctx, None, lambda p: SGD([p], lr=1e-2, momentum=0.9))


def rmsprop_steps(ctx: Ctx) -> None:
    _steps(ctx, dict(RMS_CONFIG), lambda p: RMSprop([p], lr=0.02, alpha=0.9, eps=1e-8))


def rmsprop_defaults(ctx: Ctx) -> None:
    _steps(ctx, None, lambda p: RMSprop([p], lr=1e-2, alpha=0.99, eps=1e-8))


def adam_steps(ctx: Ctx) -> None:
    try:
        _steps(ctx, dict(ADAM_CONFIG), lambda p: Adam([p], lr=0.02, betas=(0.8, 0.9), eps=1e-8))
    except Fail as e:
        raise Fail(str(e) + _adam_hint(ctx)) from None


def _adam_hint(ctx: Ctx) -> str:
    """Replays the test with Adam without bias correction: if that is what the student did, say so."""
    rng = np.random.default_rng(0)
    w, dw = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    try:
        got, _ = ctx.target(w.copy(), dw.copy(), dict(ADAM_CONFIG))
    except Exception:  # noqa: BLE001 - the test's own message says what failed
        return ""
    c = ADAM_CONFIG
    m, v = (1 - c["beta1"]) * dw, (1 - c["beta2"]) * dw * dw
    plain = w - c["learning_rate"] * m / (np.sqrt(v) + c["epsilon"])
    if np.allclose(np.asarray(got, np.float64), plain, rtol=1e-9, atol=0):
        return (
            ". Hint: the step lacks the bias correction: use m / (1 - beta1^t) and v / (1 - beta2^t), "
            "with t incremented before the update (t = 1 at the first step)"
        )
    return ""


def adam_defaults(ctx: Ctx) -> None:
    _steps(ctx, None, lambda p: Adam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8))


def _fn(name: str, file: str, *items) -> Unit:
    return Unit(name, file, tests(name, "", *items))


INTERFACE = Interface(
    name="cs231n",
    description="CS231n assignment 2: layers.py (affine, relu, softmax_loss, batchnorm, dropout), optim.py",
    files=("layers.py", "optim.py"),
    units=(
        _fn(
            "affine_forward",
            "layers.py",
            ("matches the reference", 2, affine_forward_matches),
            ("shape and dtype", 1, affine_forward_shape),
            ("inputs unchanged", 1, affine_forward_inplace),
        ),
        _fn(
            "affine_backward",
            "layers.py",
            ("matches the reference", 2, affine_backward_matches),
            ("shape and dtype", 1, affine_backward_shape),
            ("finite differences", 2, affine_backward_fd),
            ("upstream gradient and cache unchanged", 1, affine_backward_inplace),
        ),
        _fn(
            "relu_forward",
            "layers.py",
            ("matches the reference", 1, relu_forward_matches),
            ("shape and dtype", 1, relu_forward_shape),
            ("input unchanged", 1, relu_forward_inplace),
        ),
        _fn(
            "relu_backward",
            "layers.py",
            ("matches the reference", 1, relu_backward_matches),
            ("derivative at 0", 1, relu_backward_at_zero),
            ("finite differences", 1, relu_backward_fd),
            ("upstream gradient and cache unchanged", 1, relu_backward_inplace),
        ),
        _fn(
            "softmax_loss",
            "layers.py",
            ("loss matches the reference", 2, softmax_loss_value),
            ("gradient matches the reference", 2, softmax_loss_grad),
            ("finite differences", 2, softmax_loss_fd),
            ("numerically stable", 1, softmax_loss_stable),
            ("inputs unchanged", 1, softmax_loss_inplace),
        ),
        _fn(
            "batchnorm_forward",
            "layers.py",
            ("train mode matches the reference", 2, batchnorm_train_matches),
            ("running statistics", 1, batchnorm_running_stats),
            ("test mode uses the running statistics", 1, batchnorm_test_mode),
            ("shape and dtype", 1, batchnorm_forward_shape),
            ("inputs unchanged", 1, batchnorm_forward_inplace),
        ),
        _fn(
            "batchnorm_backward",
            "layers.py",
            ("matches the reference", 2, batchnorm_backward_matches),
            ("finite differences", 2, batchnorm_backward_fd),
            ("upstream gradient unchanged", 1, batchnorm_backward_inplace),
        ),
        _fn(
            "dropout_forward",
            "layers.py",
            ("test mode is the identity", 1, dropout_test_mode),
            ("train mode keeps p of the units, scaled by 1/p", 2, dropout_train_mode),
            ("the same seed gives the same mask", 1, dropout_seeded),
            ("input unchanged", 1, dropout_forward_inplace),
        ),
        _fn(
            "dropout_backward",
            "layers.py",
            ("train mode applies the mask", 1, dropout_backward_train),
            ("test mode passes the gradient", 1, dropout_backward_test),
        ),
        _fn(
            "sgd_momentum",
            "optim.py",
            ("5 steps match the reference", 2, sgd_momentum_steps),
            ("default hyperparameters", 1, sgd_momentum_defaults),
        ),
        _fn(
            "rmsprop",
            "optim.py",
            ("5 steps match the reference", 2, rmsprop_steps),
            ("default hyperparameters", 1, rmsprop_defaults),
        ),
        _fn(
            "adam",
            "optim.py",
            ("5 steps match the reference", 2, adam_steps),
            ("default hyperparameters", 1, adam_defaults),
        ),
    ),
)

"""Checks for class-based layers (UvA's `LinearModule`..., chainrule's `Linear`...), shared by the
interfaces that have them. A `Style` says how an interface's objects are called (params dicts or
`Param` objects, `backward(x, y)` or `backward()` for a loss); the checks are written once.

Every check builds fresh student objects, sets the parameters to random float64 values in the
student's own layout (a weight stored (in, out) is graded as such, except by the `__init__` test
of an interface that fixes the layout), and compares with `chainrule.nn.functional`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.gradcheck import numerical_grad
from chainrule.nn import functional as F

from .diagnose import INPLACE_INPUT, INPLACE_UPSTREAM, Context, as_array, compare
from .spec import Ctx, Fail

FD_TOLERANCE = 1e-5  # central differences with eps 1e-6 in float64 agree to ~1e-9


def fd_context(what: str, batch: int, kind: str = "grad") -> Context:
    return Context(what, kind, batch, against="the finite differences of your forward")


def check(message: str | None) -> None:
    if message:
        raise Fail(message)


def finite_diff(f: Callable[[], float], x: np.ndarray) -> np.ndarray:
    """Central differences of f() w.r.t. every entry of x (x is perturbed in place and restored)."""
    idx, grad = numerical_grad(f, x, eps=1e-6, max_coords=None)
    out = np.zeros(x.size)
    out[idx] = grad
    return out.reshape(x.shape)


def scalar(value: Any, what: str) -> float:
    arr, problem = as_array(value, what)
    if arr is None:
        raise Fail(problem)
    if arr.size != 1:
        raise Fail(f"{what} has shape {arr.shape}; a loss is one number (the mean over the batch)")
    return float(arr.reshape(()))


def shape_dtype(value: Any, shape: tuple[int, ...], what: str) -> None:
    if not isinstance(value, np.ndarray):
        raise Fail(f"{what} is a {type(value).__name__}, expected a NumPy array")
    if value.shape != shape:
        raise Fail(f"{what} has shape {value.shape}, expected {shape}")
    if value.dtype != np.float64:
        raise Fail(f"{what} has dtype {value.dtype} for float64 input; keep the input's dtype")


def unchanged(before: np.ndarray, after: np.ndarray, hint: str, what: str) -> None:
    if not np.array_equal(before, after):
        raise Fail(f"{what} was modified. Hint: {hint}")


# ---- calling conventions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How an interface's objects hold parameters and are called."""

    name: str
    params_label: str  # how the report names a parameter: "params['{}']"
    grads_label: str  # and its gradient: "grads['{}']"
    new_linear: Callable[[Any, int, int], Any]
    params: Callable[[Any], dict[str, Any]]
    grads: Callable[[Any], dict[str, Any]]
    set_param: Callable[[Any, str, np.ndarray], None]
    loss_backward: Callable[[Any, np.ndarray, np.ndarray], Any]


def _dict_attr(obj: Any, attr: str) -> dict[str, Any]:
    d = getattr(obj, attr, None)
    if not isinstance(d, dict) or not {"weight", "bias"} <= set(d):
        raise Fail(f"{type(obj).__name__}.{attr} must be a dict with keys 'weight' and 'bias', got {d!r:.80}")
    return d


def _set_dict_param(obj: Any, name: str, value: np.ndarray) -> None:
    _dict_attr(obj, "params")[name] = value


UVA = Style(
    name="uva",
    params_label="params['{}']",
    grads_label="grads['{}']",
    new_linear=lambda cls, n_in, n_out: cls(n_in, n_out),
    params=lambda obj: _dict_attr(obj, "params"),
    grads=lambda obj: _dict_attr(obj, "grads"),
    set_param=_set_dict_param,
    loss_backward=lambda obj, x, t: obj.backward(x, t),
)


def _named(obj: Any) -> dict[str, Any]:
    try:
        return dict(obj.named_parameters())
    except Exception as e:  # noqa: BLE001
        raise Fail(f"{type(obj).__name__}.named_parameters() failed: {e}") from None


def _set_param_data(obj: Any, name: str, value: np.ndarray) -> None:
    p = _named(obj)[name]
    p.data = value
    p.grad = np.zeros_like(value)


def _chainrule_loss_backward(obj: Any, x: np.ndarray, t: np.ndarray) -> Any:
    obj.forward(x, t)
    return obj.backward()


PARAM = Style(
    name="chainrule",
    params_label="{}.data",
    grads_label="{}.grad",
    new_linear=lambda cls, n_in, n_out: cls(n_in, n_out),
    params=lambda obj: {k: p.data for k, p in _named(obj).items()},
    grads=lambda obj: {k: p.grad for k, p in _named(obj).items()},
    set_param=_set_param_data,
    loss_backward=_chainrule_loss_backward,
)


# ---- Linear ---------------------------------------------------------------------------------------

LINEAR_CASES = ((6, 5, 3), (1, 4, 2), (5, 1, 3), (4, 3, 1))  # (N, in, out): N = 1, one feature, one output


def _layout(style: Style, cls: Any) -> str:
    """'out_in' or 'in_out': how the student stores the weight (probed with in=3, out=2)."""
    shape = np.shape(style.params(style.new_linear(cls, 3, 2))["weight"])
    if shape == (2, 3):
        return "out_in"
    if shape == (3, 2):
        return "in_out"
    raise Fail(f"{style.params_label.format('weight')} has shape {shape} for in=3, out=2; expected (2, 3)")


@dataclass
class LinearCase:
    obj: Any
    x: np.ndarray  # (N, in)
    W: np.ndarray  # (out, in), whatever the student's layout
    b: np.ndarray  # (out,)
    layout: str
    bias_shape: tuple[int, ...]

    def student_w(self, a: np.ndarray) -> np.ndarray:
        """A weight-shaped (out, in) array in the student's layout."""
        return a if self.layout == "out_in" else a.T


def linear_case(ctx: Ctx, style: Style, n: int, n_in: int, n_out: int) -> LinearCase:
    layout = _layout(style, ctx.target)
    obj = style.new_linear(ctx.target, n_in, n_out)
    bias_shape = np.shape(style.params(obj)["bias"])
    if int(np.prod(bias_shape)) != n_out:
        bias_shape = (n_out,)
    W = ctx.rng.standard_normal((n_out, n_in))
    b = ctx.rng.standard_normal(n_out)
    case = LinearCase(obj, ctx.rng.standard_normal((n, n_in)), W, b, layout, bias_shape)
    style.set_param(obj, "weight", np.ascontiguousarray(case.student_w(W)))
    style.set_param(obj, "bias", b.reshape(bias_shape).copy())
    return case


def linear_forward_matches(ctx: Ctx, style: Style) -> None:
    for n, n_in, n_out in LINEAR_CASES:
        c = linear_case(ctx, style, n, n_in, n_out)
        y = c.obj.forward(c.x.copy())
        check(compare(y, F.linear_forward(c.x, c.W, c.b), Context(f"forward(x) for x {c.x.shape}", batch=n)))


def linear_forward_shape(ctx: Ctx, style: Style) -> None:
    c = linear_case(ctx, style, 4, 3, 2)
    shape_dtype(c.obj.forward(c.x), (4, 2), "forward(x)")


def _linear_reference_grads(c: LinearCase, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gW = np.empty_like(c.W)
    gb = np.empty_like(c.b)
    dx = F.linear_backward(g, c.x, c.W, gW, gb)
    return dx, gW, gb


def linear_backward_matches(ctx: Ctx, style: Style) -> None:
    for n, n_in, n_out in LINEAR_CASES:
        c = linear_case(ctx, style, n, n_in, n_out)
        c.obj.forward(c.x.copy())
        g = ctx.rng.standard_normal((n, n_out))
        dx = c.obj.backward(g.copy())
        ref_dx, ref_gW, ref_gb = _linear_reference_grads(c, g)
        where = f" for x {c.x.shape}"
        check(compare(dx, ref_dx, Context("backward(dout)" + where, kind="grad", batch=n)))
        grads = style.grads(c.obj)
        gw_label, gb_label = style.grads_label.format("weight"), style.grads_label.format("bias")
        check(compare(grads["weight"], c.student_w(ref_gW), Context(gw_label + where, "weight_grad", n)))
        gb, problem = as_array(grads["bias"], gb_label)
        check(problem)
        if gb.size == n_out:  # a bias gradient of shape (1, out) is the shape test's business
            gb = gb.reshape(-1)
        check(compare(gb, ref_gb, Context(gb_label + where, "weight_grad", n)))


def linear_backward_shape(ctx: Ctx, style: Style) -> None:
    c = linear_case(ctx, style, 4, 3, 2)
    c.obj.forward(c.x)
    shape_dtype(c.obj.backward(ctx.rng.standard_normal((4, 2))), (4, 3), "backward(dout)")


def linear_param_grad_shapes(ctx: Ctx, style: Style) -> None:
    c = linear_case(ctx, style, 4, 3, 2)
    c.obj.forward(c.x)
    c.obj.backward(ctx.rng.standard_normal((4, 2)))
    params, grads = style.params(c.obj), style.grads(c.obj)
    for name in ("weight", "bias"):
        ps, gs = np.shape(params[name]), np.shape(grads[name])
        if ps != gs:
            msg = f"{style.grads_label.format(name)} has shape {gs}, {style.params_label.format(name)} {ps}"
            if len(gs) == 2 and gs == ps[::-1]:
                msg += ". Hint: the weight gradient is transposed: dL/dW must have the shape of W"
            raise Fail(msg)


def linear_finite_differences(ctx: Ctx, style: Style) -> None:
    c = linear_case(ctx, style, 4, 5, 3)
    R = ctx.rng.standard_normal((4, 3))

    def loss() -> float:
        return float(np.sum(np.asarray(c.obj.forward(c.x), np.float64) * R))

    c.obj.forward(c.x)
    dx = np.array(c.obj.backward(R.copy()), np.float64)
    grads = {k: np.array(v, np.float64) for k, v in style.grads(c.obj).items()}
    params = style.params(c.obj)
    check(compare(dx, finite_diff(loss, c.x), fd_context("backward(dout)", 4), FD_TOLERANCE))
    for name in ("weight", "bias"):
        num = finite_diff(loss, params[name])
        label = style.grads_label.format(name)
        got = (
            grads[name].reshape(num.shape) if grads[name].size == num.size and name == "bias" else grads[name]
        )
        check(compare(got, num, fd_context(label, 4, "weight_grad"), FD_TOLERANCE))


def linear_inplace(ctx: Ctx, style: Style) -> None:
    c = linear_case(ctx, style, 4, 3, 2)
    x0 = c.x.copy()
    c.obj.forward(c.x)
    unchanged(x0, c.x, INPLACE_INPUT, "the input x of forward")
    g = ctx.rng.standard_normal((4, 2))
    g0 = g.copy()
    c.obj.backward(g)
    unchanged(g0, g, INPLACE_UPSTREAM, "the upstream gradient dout")
    unchanged(x0, c.x, INPLACE_INPUT, "the input x (after backward)")


# ---- activations (no parameters) ---------------------------------------------------------------


@dataclass(frozen=True)
class Activation:
    """An elementwise or row-wise activation and its reference."""

    forward: Callable[[np.ndarray], np.ndarray]
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (g, x, y) -> dx
    make: Callable[[Any], Any] = lambda cls: cls()


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Inputs with |x| >= 0.1: finite differences are exact away from the kink of ReLU/ELU."""
    return np.sign(rng.standard_normal(shape)) * (0.1 + np.abs(rng.standard_normal(shape)))


ACTIVATION_SHAPES = ((5, 4), (1, 3), (4, 1))


def activation_forward_matches(ctx: Ctx, act: Activation) -> None:
    for shape in ACTIVATION_SHAPES:
        x = away_from_zero(ctx.rng, shape)
        check(
            compare(
                act.make(ctx.target).forward(x.copy()), act.forward(x), Context(f"forward(x) for x {shape}")
            )
        )


def activation_forward_shape(ctx: Ctx, act: Activation) -> None:
    x = away_from_zero(ctx.rng, (4, 3))
    shape_dtype(act.make(ctx.target).forward(x), (4, 3), "forward(x)")


def activation_backward_matches(ctx: Ctx, act: Activation) -> None:
    for shape in ACTIVATION_SHAPES:
        x = away_from_zero(ctx.rng, shape)
        g = ctx.rng.standard_normal(shape)
        obj = act.make(ctx.target)
        obj.forward(x.copy())
        ref = act.backward(g, x, act.forward(x))
        check(
            compare(obj.backward(g.copy()), ref, Context(f"backward(dout) for x {shape}", "grad", shape[0]))
        )


def activation_backward_shape(ctx: Ctx, act: Activation) -> None:
    x = away_from_zero(ctx.rng, (4, 3))
    obj = act.make(ctx.target)
    obj.forward(x)
    shape_dtype(obj.backward(ctx.rng.standard_normal((4, 3))), (4, 3), "backward(dout)")


def activation_finite_differences(ctx: Ctx, act: Activation) -> None:
    x = away_from_zero(ctx.rng, (4, 5))
    R = ctx.rng.standard_normal((4, 5))
    obj = act.make(ctx.target)

    def loss() -> float:
        return float(np.sum(np.asarray(obj.forward(x), np.float64) * R))

    obj.forward(x)
    dx = np.array(obj.backward(R.copy()), np.float64)
    check(compare(dx, finite_diff(loss, x), fd_context("backward(dout)", 4), FD_TOLERANCE))


def activation_inplace(ctx: Ctx, act: Activation) -> None:
    x = away_from_zero(ctx.rng, (4, 5))
    x0 = x.copy()
    obj = act.make(ctx.target)
    obj.forward(x)
    unchanged(x0, x, INPLACE_INPUT, "the input x of forward")
    g = ctx.rng.standard_normal((4, 5))
    g0 = g.copy()
    obj.backward(g)
    unchanged(g0, g, INPLACE_UPSTREAM, "the upstream gradient dout")
    unchanged(x0, x, INPLACE_INPUT, "the input x (after backward)")


def relu_derivative_at_zero(ctx: Ctx, act: Activation) -> None:
    x = away_from_zero(ctx.rng, (4, 5))
    x[ctx.rng.random((4, 5)) < 0.4] = 0.0
    x[0, 0] = 0.0
    g = ctx.rng.standard_normal((4, 5))
    obj = act.make(ctx.target)
    obj.forward(x.copy())
    ref = act.backward(g, x, act.forward(x))
    ctx_ = Context("backward(dout) where x has zeros", "grad", 4, zero_mask=x == 0)
    check(compare(obj.backward(g.copy()), ref, ctx_))


def large_logits(rng: np.random.Generator, n: int = 4, c: int = 5) -> np.ndarray:
    """Logits of magnitude ~1e3, rows offset by 1e3 from each other: exp overflows without the max
    trick, and a max taken over the whole batch makes the lowest rows underflow to 0/0."""
    z = rng.standard_normal((n, c)) * 300.0 + np.array([0.0, 1e3, -1e3, 2e3][:n])[:, None]
    return z


def softmax_stable(ctx: Ctx, act: Activation) -> None:
    z = large_logits(ctx.rng)
    with np.errstate(all="ignore"):
        y = act.make(ctx.target).forward(z.copy())
    ctx_ = Context("forward(x) for logits of magnitude ~1e3", large_logits=True, row_max=z.max(axis=1))
    check(compare(y, act.forward(z), ctx_))


def activation_tests(cls_name: str, act: Activation, points: dict[str, float]) -> list[tuple]:
    """(method, title, points, check) rows for the common activation criteria."""
    rows = [
        ("forward", "matches the reference", activation_forward_matches),
        ("forward", "shape and dtype", activation_forward_shape),
        ("backward", "matches the reference", activation_backward_matches),
        ("backward", "shape and dtype", activation_backward_shape),
        ("backward", "finite differences", activation_finite_differences),
        ("backward", "input and upstream gradient unchanged", activation_inplace),
    ]
    return [(m, t, points.get(t, 1.0), _bind(f, act)) for m, t, f in rows]


def _bind(f: Callable[..., None], arg: Any) -> Callable[[Ctx], None]:
    def run(ctx: Ctx) -> None:
        return f(ctx, arg)

    run.__name__ = f.__name__
    return run


bind = _bind


# ---- cross-entropy losses ------------------------------------------------------------------------


@dataclass(frozen=True)
class LossKind:
    """A cross-entropy loss: on probabilities (UvA's CrossEntropyModule after a SoftMaxModule) or
    on logits (chainrule's SoftmaxCrossEntropy), with one-hot or integer targets."""

    style: Style
    on_logits: bool
    one_hot: bool

    def inputs(self, rng: np.random.Generator, n: int, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(input, target as given to the student, one-hot targets)."""
        z = rng.standard_normal((n, c))
        x = z if self.on_logits else F.softmax(z)
        labels = rng.integers(0, c, n)
        onehot = np.eye(c)[labels]
        return x, (onehot if self.one_hot else labels), onehot

    def reference(self, x: np.ndarray, onehot: np.ndarray) -> tuple[float, np.ndarray]:
        if self.on_logits:
            labels = onehot.argmax(axis=1)
            loss, p = F.softmax_cross_entropy_forward(x, labels)
            return loss, F.softmax_cross_entropy_backward(p, labels)
        with np.errstate(divide="ignore", invalid="ignore"):
            return F.cross_entropy_forward(x, onehot), F.cross_entropy_backward(x, onehot)


LOSS_CASES = ((6, 4), (1, 3), (5, 1))  # N = 1 and a single class included


def loss_forward_matches(ctx: Ctx, kind: LossKind) -> None:
    for n, c in LOSS_CASES:
        x, t, onehot = kind.inputs(ctx.rng, n, c)
        got = scalar(ctx.target().forward(x.copy(), t.copy()), "forward(x, y)")
        ctx_ = Context(f"the loss for x {x.shape}", "loss", n)
        check(compare(np.array(got), np.array(kind.reference(x, onehot)[0]), ctx_))


def loss_forward_shape(ctx: Ctx, kind: LossKind) -> None:
    x, t, _ = kind.inputs(ctx.rng, 4, 3)
    value = ctx.target().forward(x, t)
    got = scalar(value, "forward(x, y)")
    if not np.isfinite(got):
        raise Fail(f"forward(x, y) returned {got}")


def loss_backward_matches(ctx: Ctx, kind: LossKind) -> None:
    for n, c in LOSS_CASES:
        x, t, onehot = kind.inputs(ctx.rng, n, c)
        got = kind.style.loss_backward(ctx.target(), x.copy(), t.copy())
        check(compare(got, kind.reference(x, onehot)[1], Context(f"dL/dx for x {x.shape}", "grad", n)))


def loss_backward_shape(ctx: Ctx, kind: LossKind) -> None:
    x, t, _ = kind.inputs(ctx.rng, 4, 3)
    shape_dtype(kind.style.loss_backward(ctx.target(), x, t), (4, 3), "dL/dx")


def loss_finite_differences(ctx: Ctx, kind: LossKind) -> None:
    x, t, _ = kind.inputs(ctx.rng, 4, 5)
    obj = ctx.target()
    got = np.array(kind.style.loss_backward(obj, x.copy(), t.copy()), np.float64)
    num = finite_diff(lambda: scalar(obj.forward(x, t), "forward(x, y)"), x)
    check(compare(got, num, fd_context("dL/dx", 4), FD_TOLERANCE))


def loss_inplace(ctx: Ctx, kind: LossKind) -> None:
    x, t, _ = kind.inputs(ctx.rng, 4, 5)
    x0, t0 = x.copy(), t.copy()
    obj = ctx.target()
    obj.forward(x, t)
    unchanged(x0, x, INPLACE_INPUT, "the input x of forward")
    unchanged(t0, t, INPLACE_INPUT, "the targets y of forward")
    kind.style.loss_backward(obj, x, t)
    unchanged(x0, x, INPLACE_INPUT, "the input x of backward")
    unchanged(t0, t, INPLACE_INPUT, "the targets y of backward")


def loss_stable(ctx: Ctx, kind: LossKind) -> None:
    """Logits ~1e3: the loss (and on logits, its gradient) finite and right. On probabilities
    (softmax outputs of such logits, most of them exactly 0 with the true class the largest), the
    loss must not be 0 * log(0) = nan."""
    z = large_logits(ctx.rng)
    n, c = z.shape
    if kind.on_logits:
        x = z
        labels = ctx.rng.integers(0, c, n)
    else:
        x = F.softmax(z)
        labels = z.argmax(axis=1)
    onehot = np.eye(c)[labels]
    t = onehot if kind.one_hot else labels
    ref_loss, ref_grad = kind.reference(x, onehot)
    obj = ctx.target()
    with np.errstate(all="ignore"):
        got = scalar(obj.forward(x.copy(), t.copy()), "forward(x, y)")
        what = (
            "the loss for logits of magnitude ~1e3"
            if kind.on_logits
            else "the loss for probabilities with zeros"
        )
        ctx_ = Context(what, "loss", n, large_logits=kind.on_logits, row_max=z.max(axis=1))
        ctx_.extra["zero_probs"] = not kind.on_logits
        check(compare(np.array(got), np.array(ref_loss), ctx_))
        if kind.on_logits:
            g = kind.style.loss_backward(ctx.target(), x.copy(), t.copy())
            ctx_ = Context(
                "dL/dx for logits of magnitude ~1e3", "grad", n, large_logits=True, row_max=z.max(axis=1)
            )
            check(compare(g, ref_grad, ctx_))


# ---- optional: float32 kept (off by default; a rubric adds it) -----------------------------------


def linear_float32(ctx: Ctx, style: Style) -> None:
    c = linear_case(ctx, style, 4, 3, 2)
    style.set_param(c.obj, "weight", np.ascontiguousarray(c.student_w(c.W)).astype(np.float32))
    style.set_param(c.obj, "bias", c.b.reshape(c.bias_shape).astype(np.float32))
    y = c.obj.forward(c.x.astype(np.float32))
    if np.asarray(y).dtype != np.float32:
        raise Fail(f"forward(x) has dtype {np.asarray(y).dtype} for float32 input and parameters")


def activation_float32(ctx: Ctx, act: Activation) -> None:
    x = away_from_zero(ctx.rng, (4, 3)).astype(np.float32)
    obj = act.make(ctx.target)
    y = obj.forward(x)
    dx = obj.backward(np.ones_like(x))
    for what, a in (("forward(x)", y), ("backward(dout)", dx)):
        if np.asarray(a).dtype != np.float32:
            raise Fail(f"{what} has dtype {np.asarray(a).dtype} for float32 input")

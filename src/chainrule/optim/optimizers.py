"""Optimizers: small classes over a list of `Param` that update `Param.data` in place.

Every optimizer follows PyTorch's `torch.optim` update rule exactly (the tests compare trajectories
with `torch.optim` to 1e-10 relative in float64), keeps the parameters' dtype (float32 stays
float32: hyperparameters are stored as Python floats, which NumPy never upcasts to), and does its
arithmetic in place, in preallocated state and scratch buffers: a step allocates no arrays.

`lr` is a plain settable attribute (validated): a trainer sets it from a schedule before each
`step()`. `state_dict()` / `load_state_dict()` save and restore the step count, the
hyperparameters and every moment buffer (NumPy arrays) for checkpoint and resume.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from .. import _blas
from ..nn.module import Module, Param
from ..parallel import MIN_PARALLEL_SIZE, split_apply
from . import _checks

# below this many elements the ctypes call costs more than the fused pass saves (measured: 78k is a tie)
BLAS_MIN_SIZE = 1 << 17

__all__ = ["SGD", "Adam", "AdamW", "OPTIMIZERS", "Optimizer", "RMSprop", "make_optimizer"]


# ---- validation helpers ------------------------------------------------------------------------
def _check_params(params: Iterable[Param] | Module) -> list[Param]:
    if isinstance(params, Module):
        params = params.parameters()
    if isinstance(params, Param):
        raise ValueError("params must be a list of Param, got a single Param: wrap it in a list")
    try:
        plist = list(params)
    except TypeError:
        raise ValueError(f"params must be a list of Param, got {type(params).__name__}") from None
    if not plist:
        raise ValueError("optimizer got an empty parameter list")
    seen: set[int] = set()
    for i, p in enumerate(plist):
        if not isinstance(p, Param):
            raise ValueError(f"params[{i}] is a {type(p).__name__}, not a Param")
        if not isinstance(p.data, np.ndarray) or p.data.dtype.kind != "f":
            raise ValueError(
                f"params[{i}] ({p!r}) must hold a floating-point NumPy array, "
                f"got {getattr(p.data, 'dtype', type(p.data).__name__)}"
            )
        if id(p) in seen:
            raise ValueError(f"params[{i}] ({p!r}) appears more than once in the parameter list")
        seen.add(id(p))
    return plist


class Optimizer:
    """Base class: holds `params`, the learning rate `lr`, the step count and the state buffers.

    Subclasses name their hyperparameters in `_hyper` and their per-parameter state buffers in
    `_buffers`, and implement `_update(i, p, g)` for one parameter.

    Args:
        params: a list of `Param` (or a `Module`, whose `parameters()` are taken).
        lr: learning rate (>= 0); settable at any time, e.g. from a schedule.

    Attributes:
        params: the parameters, in order.
        lr: learning rate used by the next `step()`.
        step_count: number of `step()` calls so far (PyTorch's `state["step"]`).
        state: buffer name -> one array per parameter (same shape and dtype as the parameter).
    """

    _hyper: ClassVar[tuple[str, ...]] = ()
    _buffers: ClassVar[tuple[str, ...]] = ()
    _n_scratch: ClassVar[int] = 1

    def __init__(self, params: Iterable[Param] | Module, lr: float) -> None:
        self.params: list[Param] = _check_params(params)
        self.lr = lr
        self.step_count = 0
        self.state: dict[str, list[np.ndarray]] = {}
        # scratch arrays, one set per parameter: never saved, overwritten by every step
        self._scratch = [[np.empty_like(p.data) for _ in range(self._n_scratch)] for p in self.params]

    def _init_state(self) -> None:
        self.state = {name: [np.zeros_like(p.data) for p in self.params] for name in self._buffers}

    # ---- learning rate -----------------------------------------------------------------------
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = _checks.at_least_zero("lr", value)

    # ---- the update ---------------------------------------------------------------------------
    def step(self) -> None:
        """Apply one update to every parameter from its current `grad`."""
        self.step_count += 1
        for i, p in enumerate(self.params):
            g = p.grad
            if g.shape != p.data.shape:
                raise ValueError(f"{p!r} has a gradient of shape {g.shape}, expected {p.data.shape}")
            self._update(i, p, g)

    def _update(self, i: int, p: Param, g: np.ndarray) -> None:
        raise NotImplementedError

    def _decayed_grad(self, p: Param, g: np.ndarray, wd: float, out: np.ndarray) -> np.ndarray:
        """g + wd * p (L2 weight decay folded into the gradient), into `out`; `g` itself if wd == 0.
        The caller's `p.grad` is never modified."""
        if wd == 0.0:
            return g
        np.multiply(p.data, wd, out=out)
        out += g
        return out

    def zero_grad(self) -> None:
        """Set every parameter's `grad` to zero (not needed with chainrule's overwriting backward)."""
        for p in self.params:
            p.grad.fill(0)

    # ---- hyperparameters and checkpointing ---------------------------------------------------------
    def hyperparameters(self) -> dict[str, Any]:
        return {"lr": self.lr, **{k: getattr(self, k) for k in self._hyper}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({len(self.params)} params, {args})"

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: a dict with

        - `"optimizer"`: the class name,
        - `"step"`: the step count (int),
        - `"hyperparameters"`: `lr` and the others (Python floats and bools),
        - `"buffers"`: a flat dict `"<buffer>.<param index>" -> ndarray` (copies).
        """
        buffers = {f"{name}.{i}": a.copy() for name, arrs in self.state.items() for i, a in enumerate(arrs)}
        return {
            "optimizer": type(self).__name__,
            "step": self.step_count,
            "hyperparameters": self.hyperparameters(),
            "buffers": buffers,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a `state_dict()` taken from the same optimizer type over the same parameters.
        Buffers are copied into the existing arrays (shapes must match; dtypes are kept)."""
        try:
            kind, step, hyper, buffers = (
                state["optimizer"],
                state["step"],
                state["hyperparameters"],
                state["buffers"],
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"not an optimizer state dict (missing {e})") from None
        if kind != type(self).__name__:
            raise ValueError(f"state dict is for optimizer {kind!r}, this is {type(self).__name__!r}")
        if not isinstance(hyper, dict):
            raise ValueError(f"optimizer state: hyperparameters must be a dict, got {type(hyper).__name__}")
        try:  # validates every hyperparameter before anything changes
            probe = type(self)(self.params, **hyper)
        except TypeError as e:
            raise ValueError(f"optimizer state does not fit {type(self).__name__}: {e}") from None
        if probe._buffers != self._buffers:
            raise ValueError(
                f"optimizer state has buffers {list(probe._buffers)} (from {hyper}), this optimizer has "
                f"{list(self._buffers)}: build it with the same momentum/amsgrad/centered settings"
            )
        if not isinstance(buffers, dict):
            raise ValueError(f"optimizer state: buffers must be a dict, got {type(buffers).__name__}")
        expected = {f"{name}.{i}" for name in self._buffers for i in range(len(self.params))}
        missing, unexpected = sorted(expected - set(buffers)), sorted(set(buffers) - expected)
        if missing or unexpected:
            raise ValueError(f"optimizer state does not fit: missing {missing}, unexpected {unexpected}")
        for name in self._buffers:
            for i, p in enumerate(self.params):
                src = np.asarray(buffers[f"{name}.{i}"])
                if src.shape != p.data.shape:
                    raise ValueError(
                        f"optimizer buffer {name}.{i} has shape {src.shape}, "
                        f"parameter {p!r} has {p.data.shape}"
                    )
        try:
            step = int(step)
        except (TypeError, ValueError):
            raise ValueError(f"optimizer state has a step count that is not an integer: {step!r}") from None
        if step < 0:
            raise ValueError(f"optimizer state has a negative step count {step}")
        for name in self._buffers:
            for i in range(len(self.params)):
                self.state[name][i][...] = buffers[f"{name}.{i}"]
        for k, v in probe.hyperparameters().items():
            setattr(self, k, v)
        self.step_count = step


def _all_contiguous(*arrays: np.ndarray) -> bool:
    return all(a.flags.c_contiguous for a in arrays)


def _momentum_step_split(
    p: np.ndarray, g: np.ndarray, v: np.ndarray, tmp: np.ndarray, lr: float, mu: float
) -> None:
    """v <- mu v + g; p <- p - lr v, on flat views, split across threads (`chainrule.parallel`)."""
    pf, gf, vf, tf = p.reshape(-1), g.reshape(-1), v.reshape(-1), tmp.reshape(-1)

    def part(a: int, b: int) -> None:
        vv, tt = vf[a:b], tf[a:b]
        vv *= mu
        vv += gf[a:b]
        np.multiply(vv, lr, out=tt)
        pf[a:b] -= tt

    split_apply(part, vf.size)


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay,
    in PyTorch's convention (`torch.optim.SGD`, identical trajectories).

    Update rule, for each parameter p with gradient g, at step t = 1, 2, ...::

        g  <- g + weight_decay * p                        (L2 weight decay, if > 0)
        v  <- g                                           if t == 1 (no dampening on the first step)
        v  <- momentum * v + (1 - dampening) * g          if t > 1
        d  <- g + momentum * v   if nesterov   else   v   (d = g when momentum == 0)
        p  <- p - lr * d

    Relation to the seeds' form `v <- mu * v - lr * g; p <- p + v` (seed 003): that velocity is
    `-lr` times ours. With a constant `lr` the two give identical trajectories (for dampening 0,
    no Nesterov). They differ when `lr` changes over time: the seeds' velocity keeps the old
    learning rates baked into it (a lr change acts gradually), while here the whole velocity is
    rescaled at once by the new `lr` (a lr drop also slows down the momentum already built up).

    Args:
        params: list of `Param` (or a `Module`).
        lr: learning rate, >= 0.
        momentum: momentum factor mu in [0, 1).
        dampening: dampening for momentum in [0, 1); needs momentum > 0 to matter.
        nesterov: Nesterov momentum (needs momentum > 0 and dampening == 0).
        weight_decay: L2 penalty coefficient added to the gradient, >= 0.
    """

    _hyper = ("momentum", "dampening", "nesterov", "weight_decay")

    def __init__(
        self,
        params: Iterable[Param] | Module,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        self.momentum = _checks.unit_interval("momentum", momentum)
        self.dampening = _checks.unit_interval("dampening", dampening)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError(
                f"nesterov needs momentum > 0 and dampening == 0, got momentum={self.momentum}, "
                f"dampening={self.dampening}"
            )
        self.weight_decay = _checks.at_least_zero("weight_decay", weight_decay)
        self._buffers = ("momentum_buffer",) if self.momentum != 0.0 else ()
        super().__init__(params, lr)
        self._init_state()

    def step(self) -> None:
        """Apply one update. The common case (momentum, no dampening, Nesterov or weight decay)
        runs a tight loop: v *= mu; v += g; p -= lr * v (4 in-place passes, no allocation), or for
        large parameters two fused BLAS passes (`chainrule._blas`)."""
        plain_momentum = self.momentum and not (self.nesterov or self.dampening or self.weight_decay)
        if not plain_momentum or self.step_count == 0:
            super().step()
            return
        self.step_count += 1
        lr, mu = self._lr, self.momentum
        for p, v, (tmp,) in zip(self.params, self.state["momentum_buffer"], self._scratch, strict=True):
            g = p.grad
            if g.shape != v.shape:
                raise ValueError(f"{p!r} has a gradient of shape {g.shape}, expected {v.shape}")
            if v.size >= BLAS_MIN_SIZE and _blas.available(p.data, g, v):
                # large: one fused BLAS pass each, v <- g + mu v and p <- p - lr v (2x the NumPy loop)
                _blas.axpby(1.0, g, float(mu), v)
                _blas.axpy(-float(lr), v, p.data)
                continue
            if v.size >= MIN_PARALLEL_SIZE and _all_contiguous(p.data, g, v, tmp):
                _momentum_step_split(p.data, g, v, tmp, lr, mu)  # large: halves on 2 threads
                continue
            v *= mu
            v += g
            np.multiply(v, lr, out=tmp)
            p.data -= tmp

    def _update(self, i: int, p: Param, g: np.ndarray) -> None:
        tmp = self._scratch[i][0]
        g = self._decayed_grad(p, g, self.weight_decay, tmp)  # g is p.grad (read only) or tmp
        mu, lr = self.momentum, self.lr
        if mu == 0.0:
            np.multiply(g, lr, out=tmp)  # plain SGD
            p.data -= tmp
            return
        v = self.state["momentum_buffer"][i]
        if self.step_count == 1:
            v[...] = g
        else:
            v *= mu
            if self.dampening == 0.0:
                v += g
            else:  # not Nesterov, so g is not needed after this: scaling it in tmp is safe
                np.multiply(g, 1.0 - self.dampening, out=tmp)
                v += tmp
        if self.nesterov:  # d = g + mu * v, in tmp (g may be tmp itself)
            np.multiply(g, lr, out=tmp)
            p.data -= tmp
            np.multiply(v, lr * mu, out=tmp)
            p.data -= tmp
        else:
            np.multiply(v, lr, out=tmp)
            p.data -= tmp


class Adam(Optimizer):
    r"""Adam (Kingma and Ba), as `torch.optim.Adam` (L2 weight decay added to the gradient).

    Update rule at step t = 1, 2, ... (m, v start at zero)::

        g     <- g + weight_decay * p                     (if weight_decay > 0)
        m     <- beta1 * m + (1 - beta1) * g
        v     <- beta2 * v + (1 - beta2) * g^2
        v_max <- max(v_max, v)                            (amsgrad only; then v_max replaces v below)
        p     <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Args:
        params: list of `Param` (or a `Module`).
        lr: learning rate, >= 0.
        betas: (beta1, beta2), each in [0, 1).
        eps: term added to the denominator, > 0.
        weight_decay: L2 coefficient added to the gradient, >= 0 (see `AdamW` for decoupled decay).
        amsgrad: use the running maximum of v (Reddi et al.).
    """

    _hyper = ("betas", "eps", "weight_decay", "amsgrad")
    _n_scratch = 2
    _decoupled = False

    def __init__(
        self,
        params: Iterable[Param] | Module,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (_checks.unit_interval("betas[0]", b1), _checks.unit_interval("betas[1]", b2))
        self.eps = _checks.positive("eps", eps)
        self.weight_decay = _checks.at_least_zero("weight_decay", weight_decay)
        self.amsgrad = bool(amsgrad)
        self._buffers = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if self.amsgrad else ())
        super().__init__(params, lr)
        self._init_state()

    def _update(self, i: int, p: Param, g: np.ndarray) -> None:
        s1, s2 = self._scratch[i]
        b1, b2 = self.betas
        lr, t = self.lr, self.step_count
        if self._decoupled:
            if self.weight_decay != 0.0:
                p.data *= 1.0 - lr * self.weight_decay
        else:
            g = self._decayed_grad(p, g, self.weight_decay, s1)
        m, v = self.state["exp_avg"][i], self.state["exp_avg_sq"][i]
        m *= b1
        np.multiply(g, 1.0 - b1, out=s2)
        m += s2
        v *= b2
        np.multiply(g, g, out=s2)
        s2 *= 1.0 - b2
        v += s2
        if self.amsgrad:
            v = np.maximum(self.state["max_exp_avg_sq"][i], v, out=self.state["max_exp_avg_sq"][i])
        np.sqrt(v, out=s2)
        s2 *= 1.0 / math.sqrt(1.0 - b2**t)
        s2 += self.eps  # s2 = denominator
        np.divide(m, s2, out=s2)
        s2 *= lr / (1.0 - b1**t)
        p.data -= s2


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov and Hutter), as `torch.optim.AdamW`.

    Update rule at step t: first `p <- p * (1 - lr * weight_decay)`, then the `Adam` update with
    the raw gradient (no decay term added to g).

    Args:
        params: list of `Param` (or a `Module`).
        lr: learning rate, >= 0.
        betas: (beta1, beta2), each in [0, 1).
        eps: term added to the denominator, > 0.
        weight_decay: decoupled decay coefficient, >= 0 (default 1e-2, as PyTorch).
        amsgrad: use the running maximum of v.
    """

    _decoupled = True

    def __init__(
        self,
        params: Iterable[Param] | Module,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    r"""RMSprop (Hinton), as `torch.optim.RMSprop`.

    Update rule (s, a, b start at zero)::

        g <- g + weight_decay * p                     (if weight_decay > 0)
        s <- alpha * s + (1 - alpha) * g^2
        a <- alpha * a + (1 - alpha) * g              (centered only)
        r <- sqrt(s - a^2) + eps   if centered   else   sqrt(s) + eps
        b <- momentum * b + g / r;  p <- p - lr * b   (if momentum > 0)
        p <- p - lr * g / r                           (if momentum == 0)

    In the centered variant `s - a^2` is clipped at 0 (it is >= 0 in exact arithmetic; rounding
    can make it -1e-20, where PyTorch would produce NaN).

    Args:
        params: list of `Param` (or a `Module`).
        lr: learning rate, >= 0.
        alpha: smoothing constant in [0, 1).
        eps: term added to the denominator, > 0.
        weight_decay: L2 coefficient added to the gradient, >= 0.
        momentum: momentum factor in [0, 1).
        centered: normalize by the estimated variance of the gradient instead of its second moment.
    """

    _hyper = ("alpha", "eps", "weight_decay", "momentum", "centered")
    _n_scratch = 2

    def __init__(
        self,
        params: Iterable[Param] | Module,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        self.alpha = _checks.unit_interval("alpha", alpha)
        self.eps = _checks.positive("eps", eps)
        self.weight_decay = _checks.at_least_zero("weight_decay", weight_decay)
        self.momentum = _checks.unit_interval("momentum", momentum)
        self.centered = bool(centered)
        self._buffers = (
            ("square_avg",)
            + (("momentum_buffer",) if self.momentum > 0.0 else ())
            + (("grad_avg",) if self.centered else ())
        )
        super().__init__(params, lr)
        self._init_state()

    def _update(self, i: int, p: Param, g: np.ndarray) -> None:
        s1, s2 = self._scratch[i]
        a, lr = self.alpha, self.lr
        g = self._decayed_grad(p, g, self.weight_decay, s1)
        sq = self.state["square_avg"][i]
        sq *= a
        np.multiply(g, g, out=s2)
        s2 *= 1.0 - a
        sq += s2
        if self.centered:
            ga = self.state["grad_avg"][i]
            ga *= a
            np.multiply(g, 1.0 - a, out=s2)
            ga += s2
            np.multiply(ga, ga, out=s2)
            np.subtract(sq, s2, out=s2)
            np.maximum(s2, 0.0, out=s2)
            np.sqrt(s2, out=s2)
        else:
            np.sqrt(sq, out=s2)
        s2 += self.eps  # s2 = denominator r
        np.divide(g, s2, out=s2)
        if self.momentum > 0.0:
            buf = self.state["momentum_buffer"][i]
            buf *= self.momentum
            buf += s2
            np.multiply(buf, lr, out=s2)
        else:
            s2 *= lr
        p.data -= s2


# name -> (class, the defaults the name stands for); a new optimizer is its class plus one entry
_REGISTRY: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "adam": (Adam, {}),
    "adamw": (AdamW, {}),
    "rmsprop": (RMSprop, {}),
}
OPTIMIZERS = tuple(_REGISTRY)


def make_optimizer(name: str, params: Iterable[Param] | Module, **kwargs: Any) -> Optimizer:
    """Build an optimizer by name.

    Names: "sgd"; "momentum" (SGD, momentum 0.9 unless given); "nesterov" (SGD with Nesterov,
    momentum 0.9 unless given); "adam"; "adamw"; "rmsprop". The SGD family needs `lr`; the others
    default to PyTorch's learning rates. Other keyword arguments go to the constructor.

    Raises:
        ValueError: unknown name, an argument the optimizer does not take, or a bad value.
    """
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    cls, defaults = _REGISTRY[key]
    if cls is SGD and "lr" not in kwargs:
        raise ValueError(f"optimizer {name!r} needs a learning rate (lr=...)")
    kwargs = {**defaults, **kwargs}
    import inspect

    accepted = [a for a in inspect.signature(cls.__init__).parameters if a not in ("self", "params")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"optimizer {name!r} does not take {unknown}; it takes {accepted}")
    return cls(params, **kwargs)

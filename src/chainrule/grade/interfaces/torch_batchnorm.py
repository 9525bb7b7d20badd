"""UvA 2018's optional `custom_batchnorm.py` (torch): `CustomBatchNormAutograd(n_neurons, eps)`,
`CustomBatchNormManualFunction` (a `torch.autograd.Function`: forward(ctx, input, gamma, beta,
eps), backward(ctx, grad_output)) and `CustomBatchNormManualModule(n_neurons, eps)`, graded in
training mode (batch statistics) in float64 against `chainrule.nn.functional`'s batch norm.
torch is imported only inside the checks (the child that runs them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.nn import functional as F

from ..diagnose import Context, compare
from ..modular import check
from ..spec import Ctx, Fail, Unit, tests

EPS = 1e-5
CASES = ((8, 4), (5, 1))  # (N, D): one feature included


def _inputs(ctx: Ctx, n: int, d: int):
    import torch

    x = ctx.rng.standard_normal((n, d)) * 2 + 1
    gamma, beta = ctx.rng.standard_normal(d), ctx.rng.standard_normal(d)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    return x, gamma, beta, tx


def _gamma_beta(module: Any, name: str) -> tuple[Any, Any]:
    """The module's gamma and beta: by name (gamma/beta or weight/bias), else in registration order."""
    params = dict(module.named_parameters())
    for g, b in (("gamma", "beta"), ("weight", "bias")):
        if g in params and b in params:
            return params[g], params[b]
    if len(params) != 2:
        raise Fail(f"{name} has parameters {sorted(params)}; expected gamma and beta (nn.Parameter)")
    return tuple(params.values())  # type: ignore[return-value]


def _module_forward(ctx: Ctx, n: int, d: int):
    import torch

    x, gamma, beta, tx = _inputs(ctx, n, d)
    module = ctx.target(d, eps=EPS)
    module = module.double().train()
    tg, tb = _gamma_beta(module, ctx.target.__name__)
    with torch.no_grad():
        tg.copy_(torch.from_numpy(gamma))
        tb.copy_(torch.from_numpy(beta))
    return x, gamma, beta, tx, tg, tb, module(tx)


def _reference(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, g: np.ndarray):
    y, xhat, inv_std, _, _ = F.batchnorm_forward(x, gamma, beta, EPS)
    dgamma, dbeta = np.empty_like(gamma), np.empty_like(beta)
    dx = F.batchnorm_backward(g, xhat, inv_std, gamma, dgamma, dbeta)
    return y, dx, dgamma, dbeta


def _grads(ctx: Ctx, out: Any, x: np.ndarray, gamma, beta, tensors) -> None:
    """Backpropagate a random upstream gradient through `out`, compare dx, dgamma, dbeta."""
    import torch

    g = ctx.rng.standard_normal(x.shape)
    out.backward(torch.from_numpy(g))
    _, rdx, rdg, rdb = _reference(x, gamma, beta, g)
    n = x.shape[0]
    for what, t, ref in zip(("dL/dinput", "dL/dgamma", "dL/dbeta"), tensors, (rdx, rdg, rdb), strict=True):
        if t.grad is None:
            raise Fail(f"{what} is None: the graph does not reach it")
        check(compare(t.grad.numpy(), ref, Context(f"{what} for input {x.shape}", "grad", n)))


def module_forward_matches(ctx: Ctx) -> None:
    for n, d in CASES:
        x, gamma, beta, _, _, _, y = _module_forward(ctx, n, d)
        ref = _reference(x, gamma, beta, np.zeros_like(x))[0]
        check(compare(y.detach().numpy(), ref, Context(f"forward(input) for input {x.shape}", batch=n)))


def module_backward_matches(ctx: Ctx) -> None:
    for n, d in CASES:
        x, gamma, beta, tx, tg, tb, y = _module_forward(ctx, n, d)
        _grads(ctx, y, x, gamma, beta, (tx, tg, tb))


def module_checks_shape(ctx: Ctx) -> None:
    import torch

    module = ctx.target(4, eps=EPS).double()
    try:
        module(torch.zeros(8, 5, dtype=torch.float64))
    except Exception:  # noqa: BLE001 - any error refuses it
        return
    raise Fail("forward accepted an input of shape (8, 5) for n_neurons = 4: check the input's shape")


def function_forward_matches(ctx: Ctx) -> None:
    import torch

    for n, d in CASES:
        x, gamma, beta, tx = _inputs(ctx, n, d)
        y = ctx.target.apply(tx, torch.from_numpy(gamma), torch.from_numpy(beta), EPS)
        ref = _reference(x, gamma, beta, np.zeros_like(x))[0]
        check(compare(y.detach().numpy(), ref, Context(f"forward for input {x.shape}", batch=n)))


def function_backward_matches(ctx: Ctx) -> None:
    import torch

    for n, d in CASES:
        x, gamma, beta, tx = _inputs(ctx, n, d)
        tg = torch.tensor(gamma, requires_grad=True)
        tb = torch.tensor(beta, requires_grad=True)
        _grads(ctx, ctx.target.apply(tx, tg, tb, EPS), x, gamma, beta, (tx, tg, tb))


def function_gradcheck(ctx: Ctx) -> None:
    """torch.autograd.gradcheck: the hand-written backward against finite differences (float64)."""
    import torch
    from torch.autograd.gradcheck import GradcheckError

    _, gamma, beta, tx = _inputs(ctx, 4, 3)
    tg = torch.tensor(gamma, requires_grad=True)
    tb = torch.tensor(beta, requires_grad=True)
    try:
        torch.autograd.gradcheck(
            lambda a, b, c: ctx.target.apply(a, b, c, EPS), (tx, tg, tb), eps=1e-6, atol=1e-6
        )
    except GradcheckError as e:
        first = " ".join(str(e).split("\n")[:2]).strip()
        raise Fail(f"gradcheck failed: {first}") from None


def _unit(name: str, criteria: tuple) -> Unit:
    return Unit(name, "custom_batchnorm.py", criteria, optional=True, requires=("torch",))


def _module_unit(name: str) -> Unit:
    return _unit(
        name,
        tests(
            name,
            "forward",
            ("matches the reference", 2, module_forward_matches),
            ("refuses an input of the wrong shape", 1, module_checks_shape),
        )
        + tests(name, "backward", ("matches the reference", 2, module_backward_matches)),
    )


FUNCTION = "CustomBatchNormManualFunction"
UNITS = (
    _module_unit("CustomBatchNormAutograd"),
    _unit(
        FUNCTION,
        tests(FUNCTION, "forward", ("matches the reference", 2, function_forward_matches))
        + tests(
            FUNCTION,
            "backward",
            ("matches the reference", 2, function_backward_matches),
            ("gradcheck", 2, function_gradcheck),
        ),
    ),
    _module_unit("CustomBatchNormManualModule"),
)

"""UvA Deep Learning 2018, assignment 1: `modules.py` (LinearModule, ReLUModule, SoftMaxModule,
CrossEntropyModule on softmax outputs and one-hot labels) and the optional `custom_batchnorm.py`
(torch; graded when torch is installed and the file is in the submission)."""

from __future__ import annotations

import numpy as np

from chainrule.nn import functional as F

from .. import modular as M
from ..modular import Activation, LossKind, bind
from ..spec import Ctx, Fail, Interface, Unit, tests
from . import torch_batchnorm

STYLE = M.UVA


def init_parameters(ctx: Ctx, strict_layout: bool = True) -> None:
    """params and grads dicts with 'weight' (out, in) and 'bias' (out entries), grads shaped alike."""
    obj = ctx.target(5, 3)
    params, grads = STYLE.params(obj), STYLE.grads(obj)
    w = np.shape(params["weight"])
    allowed = [(3, 5)] if strict_layout else [(3, 5), (5, 3)]
    if w not in allowed:
        raise Fail(
            f"params['weight'] has shape {w} for in_features=5, out_features=3; expected (3, 5) (out, in)"
        )
    if int(np.prod(np.shape(params["bias"]))) != 3:
        raise Fail(f"params['bias'] has shape {np.shape(params['bias'])}; expected 3 entries (out_features)")
    for name in ("weight", "bias"):
        if grads[name] is None or np.shape(grads[name]) != np.shape(params[name]):
            raise Fail(
                f"grads['{name}'] is {_shape_of(grads[name])}; "
                f"initialize it with zeros shaped like params['{name}']"
            )


def _shape_of(a: object) -> str:
    return "None" if a is None else f"of shape {np.shape(a)}"


def init_values(ctx: Ctx) -> None:
    """Weights ~ N(0, 0.0001^2), biases 0 (the handout's initialization)."""
    obj = ctx.target(400, 50)
    w = np.asarray(STYLE.params(obj)["weight"], np.float64)
    b = np.asarray(STYLE.params(obj)["bias"], np.float64)
    std = float(w.std())
    if not 0.8e-4 < std < 1.2e-4 or abs(float(w.mean())) > 1e-5:
        raise Fail(f"the weights have mean {w.mean():.3g} and std {std:.3g}; expected mean 0 and std 0.0001")
    if np.any(b != 0):
        raise Fail("the biases are not initialized with 0")


RELU = Activation(forward=F.relu_forward, backward=lambda g, x, y: F.relu_backward(g, y))
SOFTMAX = Activation(forward=F.softmax, backward=lambda g, x, y: F.softmax_backward(g, y))
CROSS_ENTROPY = LossKind(STYLE, on_logits=False, one_hot=True)


def linear_unit(name: str, style: M.Style, init: tuple, file: str = "modules.py") -> Unit:
    """The LinearModule tests (shared by the UvA layouts and chainrule's Linear)."""
    return Unit(
        name,
        file,
        tests(name, "__init__", *init)
        + tests(
            name,
            "forward",
            ("matches the reference", 2, bind(M.linear_forward_matches, style)),
            ("shape and dtype", 1, bind(M.linear_forward_shape, style)),
            ("float32 stays float32", 1, bind(M.linear_float32, style), False),
        )
        + tests(
            name,
            "backward",
            ("matches the reference", 2, bind(M.linear_backward_matches, style)),
            ("shape and dtype", 1, bind(M.linear_backward_shape, style)),
            ("finite differences", 2, bind(M.linear_finite_differences, style)),
            ("gradients shaped like the parameters", 1, bind(M.linear_param_grad_shapes, style)),
            ("input and upstream gradient unchanged", 1, bind(M.linear_inplace, style)),
        ),
    )


def activation_unit(
    name: str, act: Activation, extra_forward: tuple = (), extra_backward: tuple = ()
) -> Unit:
    return Unit(
        name,
        "modules.py",
        tests(
            name,
            "forward",
            ("matches the reference", 1, bind(M.activation_forward_matches, act)),
            ("shape and dtype", 1, bind(M.activation_forward_shape, act)),
            ("float32 stays float32", 1, bind(M.activation_float32, act), False),
            *extra_forward,
        )
        + tests(
            name,
            "backward",
            ("matches the reference", 1, bind(M.activation_backward_matches, act)),
            ("shape and dtype", 1, bind(M.activation_backward_shape, act)),
            ("finite differences", 1, bind(M.activation_finite_differences, act)),
            *extra_backward,
            ("input and upstream gradient unchanged", 1, bind(M.activation_inplace, act)),
        ),
    )


def loss_unit(name: str, kind: LossKind, file: str = "modules.py") -> Unit:
    return Unit(
        name,
        file,
        tests(
            name,
            "forward",
            ("matches the reference", 2, bind(M.loss_forward_matches, kind)),
            ("returns a number", 1, bind(M.loss_forward_shape, kind)),
            ("numerically stable", 1, bind(M.loss_stable, kind)),
        )
        + tests(
            name,
            "backward",
            ("matches the reference", 2, bind(M.loss_backward_matches, kind)),
            ("shape and dtype", 1, bind(M.loss_backward_shape, kind)),
            ("finite differences", 2, bind(M.loss_finite_differences, kind)),
            ("input and targets unchanged", 1, bind(M.loss_inplace, kind)),
        ),
    )


INTERFACE = Interface(
    name="uva2018",
    description="UvA DL 2018 assignment 1: modules.py (+ custom_batchnorm.py, torch)",
    files=("modules.py", "custom_batchnorm.py"),
    units=(
        linear_unit(
            "LinearModule",
            STYLE,
            (("parameters and gradients", 1, init_parameters), ("initialization", 1, init_values)),
        ),
        activation_unit(
            "ReLUModule",
            RELU,
            extra_backward=(("derivative at 0", 1, bind(M.relu_derivative_at_zero, RELU)),),
        ),
        activation_unit(
            "SoftMaxModule",
            SOFTMAX,
            extra_forward=(("stable for logits of magnitude 1e3", 1, bind(M.softmax_stable, SOFTMAX)),),
        ),
        loss_unit("CrossEntropyModule", CROSS_ENTROPY),
        *torch_batchnorm.UNITS,
    ),
)

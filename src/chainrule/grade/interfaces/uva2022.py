"""UvA Deep Learning 2022, assignment 1: `modules.py` with `LinearModule(in_features,
out_features, input_layer=False)` (Kaiming initialization; `input_layer` marks the first layer),
`ELUModule` (alpha 1), `SoftMaxModule` and `CrossEntropyModule` on softmax outputs and integer
labels. The handout does not fix the weight's layout: (out, in) and (in, out) are both graded."""

from __future__ import annotations

import math

import numpy as np

from chainrule.nn import functional as F

from .. import modular as M
from ..modular import Activation, LossKind, bind
from ..spec import Ctx, Fail, Interface
from .uva2018 import SOFTMAX, STYLE, activation_unit, init_parameters, linear_unit, loss_unit


def init_kaiming(ctx: Ctx) -> None:
    """Weights ~ N(0, 2 / in) for a hidden layer (ELU inputs) and N(0, 1 / in) for the input layer
    (`input_layer=True`: its input is the data, not an ELU output); biases 0."""
    n_in, n_out = 400, 300
    for input_layer, gain in ((False, 2.0), (True, 1.0)):
        obj = ctx.target(n_in, n_out, input_layer=input_layer)
        params = STYLE.params(obj)
        w = np.asarray(params["weight"], np.float64)
        expected = math.sqrt(gain / n_in)
        std = float(w.std())
        if abs(std / expected - 1) > 0.1 or abs(float(w.mean())) > 0.1 * expected:
            hint = ""
            if input_layer and abs(std / math.sqrt(2.0 / n_in) - 1) < 0.1:
                hint = (
                    ". Hint: with input_layer=True the layer's input is the data, not an ELU output: "
                    "Kaiming's gain is 1 there, std = sqrt(1 / in_features)"
                )
            raise Fail(
                f"input_layer={input_layer}: the weights have std {std:.4g}, expected sqrt({gain:g} / "
                f"in_features) = {expected:.4g}{hint}"
            )
        if np.any(np.asarray(params["bias"]) != 0):
            raise Fail(f"input_layer={input_layer}: the biases are not initialized with 0")


def _make_elu(cls):
    try:
        return cls()
    except TypeError:
        return cls(1.0)  # a later handout's ELUModule(alpha)


ELU = Activation(
    forward=lambda x: F.elu_forward(x, 1.0),
    backward=lambda g, x, y: F.elu_backward(g, y, 1.0),
    make=_make_elu,
)


INTERFACE = Interface(
    name="uva2022",
    description="UvA DL 2022 assignment 1: modules.py (Linear, ELU, SoftMax, CrossEntropy modules)",
    files=("modules.py",),
    units=(
        linear_unit(
            "LinearModule",
            STYLE,
            (
                ("parameters and gradients", 1, lambda ctx: init_parameters(ctx, strict_layout=False)),
                ("Kaiming initialization", 1, init_kaiming),
            ),
        ),
        activation_unit("ELUModule", ELU),
        activation_unit(
            "SoftMaxModule",
            SOFTMAX,
            extra_forward=(("stable for logits of magnitude 1e3", 1, bind(M.softmax_stable, SOFTMAX)),),
        ),
        loss_unit("CrossEntropyModule", LossKind(STYLE, on_logits=False, one_hot=False)),
    ),
)

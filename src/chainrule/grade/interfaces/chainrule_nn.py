"""Modules written against `chainrule.nn`: `modules.py` with `Linear(in_features, out_features)`
(`weight` (out, in) and `bias` as `Param`s; backward writes `Param.grad`), `ReLU`, `Softmax` and
`SoftmaxCrossEntropy` (forward(logits, labels) -> float, backward() -> dL/dlogits)."""

from __future__ import annotations

import numpy as np

from .. import modular as M
from ..modular import LossKind
from ..spec import Ctx, Fail, Interface
from .uva2018 import RELU, SOFTMAX, activation_unit, linear_unit, loss_unit


def init_parameters(ctx: Ctx) -> None:
    """Params 'weight' (out, in) and 'bias' (out,), each with a grad of its own shape."""
    obj = ctx.target(5, 3)
    try:
        named = dict(obj.named_parameters())
    except Exception as e:  # noqa: BLE001
        raise Fail(f"named_parameters() failed ({e}): subclass chainrule.nn.Module") from None
    expected = {"weight": (3, 5), "bias": (3,)}
    if set(named) != set(expected):
        raise Fail(f"named_parameters() gives {sorted(named)}, expected ['bias', 'weight']")
    for name, shape in expected.items():
        p = named[name]
        if np.shape(p.data) != shape or np.shape(p.grad) != shape:
            raise Fail(
                f"{name} has data {np.shape(p.data)} and grad {np.shape(p.grad)}; expected {shape} for both"
            )


INTERFACE = Interface(
    name="chainrule",
    description="modules.py written against chainrule.nn (Linear, ReLU, Softmax, SoftmaxCrossEntropy)",
    files=("modules.py",),
    units=(
        linear_unit("Linear", M.PARAM, (("parameters and gradients", 1, init_parameters),)),
        activation_unit(
            "ReLU", RELU, extra_backward=(("derivative at 0", 1, M.bind(M.relu_derivative_at_zero, RELU)),)
        ),
        activation_unit(
            "Softmax",
            SOFTMAX,
            extra_forward=(("stable for logits of magnitude 1e3", 1, M.bind(M.softmax_stable, SOFTMAX)),),
        ),
        loss_unit("SoftmaxCrossEntropy", LossKind(M.PARAM, on_logits=True, one_hot=False)),
    ),
)

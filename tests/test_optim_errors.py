"""Invalid hyperparameters, parameter lists, gradients and states raise ValueError naming the value."""

from __future__ import annotations

import re

import numpy as np
import pytest

from chainrule.nn import Param
from chainrule.optim import (
    SGD,
    Adam,
    AdamW,
    Cosine,
    Exponential,
    InverseScaling,
    LossRatio,
    ReduceOnPlateau,
    RMSprop,
    StepDecay,
    make_optimizer,
    make_schedule,
)


def _ps() -> list[Param]:
    return [Param(np.zeros((2, 3))), Param(np.zeros(3))]


OPTIMIZER_CASES = [
    (SGD, {"lr": -0.1}, "-0.1"),
    (SGD, {"lr": float("nan")}, "nan"),
    (SGD, {"lr": float("inf")}, "inf"),
    (SGD, {"lr": "0.1"}, "'0.1'"),
    (SGD, {"lr": 0.1, "momentum": 1.0}, "1.0"),
    (SGD, {"lr": 0.1, "momentum": -0.5}, "-0.5"),
    (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 1.5}, "1.5"),
    (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": -0.25}, "-0.25"),
    (SGD, {"lr": 0.1, "nesterov": True}, "momentum=0.0"),
    (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.5, "nesterov": True}, "dampening=0.5"),
    (SGD, {"lr": 0.1, "weight_decay": -0.001}, "-0.001"),
    (Adam, {"lr": -1e-3}, "-0.001"),
    (Adam, {"betas": (1.0, 0.999)}, "1.0"),
    (Adam, {"betas": (0.9, -0.1)}, "-0.1"),
    (Adam, {"betas": (0.9, 1.5)}, "1.5"),
    (Adam, {"betas": (0.9,)}, "(0.9,)"),
    (Adam, {"eps": 0.0}, "0.0"),
    (Adam, {"eps": -1e-8}, "-1e-08"),
    (Adam, {"weight_decay": -0.5}, "-0.5"),
    (AdamW, {"weight_decay": -0.02}, "-0.02"),
    (AdamW, {"betas": (0.9, 1.0)}, "1.0"),
    (RMSprop, {"lr": -0.01}, "-0.01"),
    (RMSprop, {"alpha": 1.0}, "1.0"),
    (RMSprop, {"alpha": -0.1}, "-0.1"),
    (RMSprop, {"eps": 0}, "0.0"),
    (RMSprop, {"momentum": 1.2}, "1.2"),
    (RMSprop, {"weight_decay": -3.0}, "-3.0"),
]


@pytest.mark.parametrize("cls,kwargs,value", OPTIMIZER_CASES)
def test_invalid_optimizer_hyperparameter(cls, kwargs, value):
    with pytest.raises(ValueError, match=re.escape(value)):
        cls(_ps(), **kwargs)


def test_invalid_lr_set_later():
    opt = SGD(_ps(), lr=0.1)
    with pytest.raises(ValueError, match=re.escape("-0.5")):
        opt.lr = -0.5
    with pytest.raises(ValueError, match="nan"):
        opt.lr = float("nan")
    assert opt.lr == 0.1  # unchanged by the failed assignments


@pytest.mark.parametrize(
    "params,message",
    [
        ([], "empty parameter list"),
        ([Param(np.zeros(2)), np.zeros(2)], "params[1] is a ndarray"),
        ([Param(np.zeros(2)), "w"], "params[1] is a str"),
        ([Param(np.zeros(2, dtype=np.int64))], "int64"),
        (Param(np.zeros(2)), "single Param"),
        (None, "NoneType"),
    ],
)
def test_invalid_parameter_lists(params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SGD(params, lr=0.1)


def test_duplicate_parameter_rejected():
    p = Param(np.zeros(2), "w")
    with pytest.raises(ValueError, match=r"params\[1\].*more than once"):
        Adam([p, p])


def test_wrong_gradient_shape_at_step():
    ps = _ps()
    ps[1].grad = np.zeros(4)
    opt = SGD(ps, lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=re.escape("(4,)")):
        opt.step()


def test_load_state_dict_mismatches():
    ps = _ps()
    sgd = SGD(ps, lr=0.1, momentum=0.9)
    state = sgd.state_dict()
    with pytest.raises(ValueError, match="'SGD'"):
        Adam(ps).load_state_dict(state)
    with pytest.raises(ValueError, match="momentum"):
        SGD(ps, lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match=re.escape("(3,)")):
        SGD([ps[0], Param(np.zeros(5))], lr=0.1, momentum=0.9).load_state_dict(state)
    missing = {**state, "buffers": {"momentum_buffer.0": state["buffers"]["momentum_buffer.0"]}}
    with pytest.raises(ValueError, match=re.escape("momentum_buffer.1")):
        SGD(ps, lr=0.1, momentum=0.9).load_state_dict(missing)
    with pytest.raises(ValueError, match="step"):
        SGD(ps, lr=0.1, momentum=0.9).load_state_dict({k: v for k, v in state.items() if k != "step"})
    bad_lr = {**state, "hyperparameters": {**state["hyperparameters"], "lr": -1.0}}
    target = SGD(ps, lr=0.3, momentum=0.9)
    with pytest.raises(ValueError, match=re.escape("-1.0")):
        target.load_state_dict(bad_lr)
    assert target.lr == 0.3  # nothing changed by a failed load


@pytest.mark.parametrize(
    "name,kwargs,message",
    [
        ("adagrad", {}, "'adagrad'"),
        ("sgd", {}, "lr"),
        ("adam", {"momentum": 0.9}, "momentum"),
        ("rmsprop", {"betas": (0.9, 0.99)}, "betas"),
        ("momentum", {"lr": 0.1, "momentum": 1.5}, "1.5"),
    ],
)
def test_make_optimizer_errors(name, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_optimizer(name, _ps(), **kwargs)


SCHEDULE_CASES = [
    (lambda: StepDecay(-0.1), "-0.1"),
    (lambda: StepDecay(0.1, gamma=0.0), "0.0"),
    (lambda: StepDecay(0.1, gamma=1.5), "1.5"),
    (lambda: StepDecay(0.1, step_size=0), "0"),
    (lambda: StepDecay(0.1, step_size=2.5), "2.5"),
    (lambda: Exponential(0.1, gamma=-0.9), "-0.9"),
    (lambda: Cosine(0.1, total_steps=0), "0"),
    (lambda: Cosine(0.1, total_steps=10, warmup_steps=10), "10"),
    (lambda: Cosine(0.1, total_steps=10, warmup_steps=-1), "-1"),
    (lambda: Cosine(0.1, total_steps=10, min_lr=0.2), "0.2"),
    (lambda: InverseScaling(0.1, power_t=-0.5), "-0.5"),
    (lambda: InverseScaling(float("nan")), "nan"),
    (lambda: LossRatio(0.1, window=0), "0"),
    (lambda: LossRatio(0.1, min_lr=0.5, max_lr=0.2), "0.2"),
    (lambda: ReduceOnPlateau(0.1, factor=1.0), "1.0"),
    (lambda: ReduceOnPlateau(0.1, factor=0.0), "0.0"),
    (lambda: ReduceOnPlateau(0.1, patience=-1), "-1"),
    (lambda: ReduceOnPlateau(0.1, threshold=-1e-4), "-0.0001"),
    (lambda: ReduceOnPlateau(0.1, cooldown=-2), "-2"),
    (lambda: ReduceOnPlateau(0.1, mode="avg"), "'avg'"),
    (lambda: ReduceOnPlateau(0.1, threshold_mode="pct"), "'pct'"),
    (lambda: ReduceOnPlateau(0.1, min_lr=-1.0), "-1.0"),
    (lambda: make_schedule("warm_restarts", 0.1), "'warm_restarts'"),
    (lambda: make_schedule("cosine", 0.1), "total_steps"),
    (lambda: make_schedule("step", 0.1, period=3), "period"),
]


@pytest.mark.parametrize("build,value", SCHEDULE_CASES)
def test_invalid_schedule_hyperparameter(build, value):
    with pytest.raises(ValueError, match=re.escape(value)):
        build()


def test_invalid_schedule_inputs():
    s = StepDecay(0.1)
    for bad, text in ((-1, "-1"), (1.5, "1.5"), ("3", "'3'")):
        with pytest.raises(ValueError, match=re.escape(text)):
            s(bad)
    r = LossRatio(0.1, window=2)
    with pytest.raises(ValueError, match="nan"):
        r.update(float("nan"))
    p = ReduceOnPlateau(0.1)
    with pytest.raises(ValueError, match="inf"):
        p.update(float("inf"))
    with pytest.raises(ValueError, match="'LossRatio'"):
        p.load_state_dict(r.state_dict())
    state = r.state_dict()
    state["window"] = 0
    with pytest.raises(ValueError, match="window"):
        LossRatio(0.1).load_state_dict(state)

"""Bad input gets a clear error that names the problem, never a deep NumPy traceback or a silently
wrong result."""

from __future__ import annotations

import re

import numpy as np
import pytest

import chainrule.nn as nn

F32 = np.float32


def _x(*shape: int, dtype=F32) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


ALL_MODULES = [
    lambda: nn.Linear(4, 3),
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softmax,
    lambda: nn.Dropout(0.5, seed=0),
    lambda: nn.BatchNorm1d(4),
    lambda: nn.MLP(4, [5], 3, seed=0),
]
IDS = ["Linear", "ReLU", "LeakyReLU", "ELU", "Sigmoid", "Tanh", "Softmax", "Dropout", "BatchNorm1d", "MLP"]


# ---- wrong shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make", [ALL_MODULES[0], ALL_MODULES[8], ALL_MODULES[9]], ids=["Linear", "BN", "MLP"]
)
def test_wrong_feature_count(make) -> None:
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\), got \(8, 5\)"):
        make().forward(_x(8, 5))


@pytest.mark.parametrize(
    "make", [ALL_MODULES[0], ALL_MODULES[6], ALL_MODULES[8]], ids=["Linear", "Softmax", "BN"]
)
def test_one_dimensional_input(make) -> None:
    with pytest.raises(ValueError, match=r"expected input of shape \(N, (\d|C)\), got \(4,\)"):
        make().forward(_x(4))


LEAVES = [m for m, i in zip(ALL_MODULES, IDS, strict=True) if i not in ("Dropout", "MLP")]
LEAF_IDS = [i for i in IDS if i not in ("Dropout", "MLP")]


@pytest.mark.parametrize("make", LEAVES, ids=LEAF_IDS)
def test_backward_with_wrong_gradient_shape(make) -> None:
    m = make()
    y = m.forward(_x(6, 4))
    with pytest.raises(ValueError, match=re.escape(f"grad_out has shape (6, 9), expected {tuple(y.shape)}")):
        m.backward(np.zeros((6, 9), F32))


def test_dropout_backward_wrong_shape() -> None:
    d = nn.Dropout(0.5, seed=0)
    d.forward(_x(6, 4))
    with pytest.raises(ValueError, match=r"grad_out has shape \(6, 9\), expected \(6, 4\)"):
        d.backward(np.zeros((6, 9), F32))


@pytest.mark.parametrize("make", LEAVES, ids=LEAF_IDS)
def test_backward_before_forward(make) -> None:
    m = make()
    with pytest.raises(RuntimeError, match="backward called before forward"):
        m.backward(np.zeros((2, 4), F32))


def test_loss_shapes() -> None:
    sce = nn.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"logits must be \(N, C\), got shape \(5,\)"):
        sce.forward(_x(5), np.array([0]))
    with pytest.raises(ValueError, match=r"labels have shape \(4,\), expected \(5,\)"):
        sce.forward(_x(5, 3), np.zeros(4, int))
    with pytest.raises(ValueError, match=r"targets \(5, 2\) do not match logits \(5, 3\)"):
        sce.forward(_x(5, 3), np.zeros((5, 2), F32))
    ce = nn.CrossEntropy()
    p = np.full((5, 3), 1 / 3, F32)
    with pytest.raises(ValueError, match=r"probabilities must be \(N, C\), got shape \(3,\)"):
        ce.forward(p[0], np.array([0]))
    with pytest.raises(ValueError, match=r"labels have shape \(2, 1, 1\), expected \(5,\)"):
        ce.forward(p, np.zeros((2, 1, 1), int))
    with pytest.raises(ValueError, match=r"targets \(5, 4\) do not match probabilities \(5, 3\)"):
        ce.forward(p, np.zeros((5, 4), F32))


def test_loss_backward_before_forward() -> None:
    for loss in (nn.SoftmaxCrossEntropy(), nn.CrossEntropy()):
        with pytest.raises(RuntimeError, match="backward called before forward"):
            loss.backward()


# ---- non-float inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ALL_MODULES, ids=IDS)
def test_integer_input_rejected(make) -> None:
    with pytest.raises(TypeError, match="expected a floating-point input, got dtype (uint8|int64)"):
        make().forward(np.ones((3, 4), np.uint8))


@pytest.mark.parametrize("make", ALL_MODULES, ids=IDS)
def test_list_input_rejected(make) -> None:
    with pytest.raises(TypeError, match="expected a NumPy array, got list"):
        make().forward([[1.0, 2.0, 3.0, 4.0]])


def test_loss_rejects_non_float_and_non_integer_labels() -> None:
    with pytest.raises(TypeError, match="expected a floating-point input, got dtype int64"):
        nn.SoftmaxCrossEntropy().forward(np.zeros((2, 3), np.int64), np.array([0, 1]))
    with pytest.raises(TypeError, match="labels must be integers, got dtype float64"):
        nn.SoftmaxCrossEntropy().forward(_x(2, 3), np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="labels must be integers, got dtype float64"):
        nn.CrossEntropy().forward(np.full((2, 3), 1 / 3), np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="expected a floating-point input, got dtype bool"):
        nn.CrossEntropy().forward(np.ones((2, 3), bool), np.array([0, 1]))


# ---- NaN / Inf: caught at the loss, traced to the entry ------------------------------------------------


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_input_is_reported_at_the_loss(bad: float) -> None:
    model = nn.MLP(4, [5], 3, seed=0)
    x = _x(6, 4)
    x[2, 1] = bad
    logits = model.forward(x)
    with pytest.raises(
        FloatingPointError, match=r"SoftmaxCrossEntropy: logits contains (nan|inf|-inf) at index \(2, \d\)"
    ):
        nn.SoftmaxCrossEntropy().forward(logits, np.zeros(6, int))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_inf_probabilities(bad: float) -> None:
    p = np.full((3, 2), 0.5)
    p[1, 0] = bad
    with pytest.raises(
        FloatingPointError, match=r"CrossEntropy: probabilities contain (nan|inf) at index \(1, 0\)"
    ):
        nn.CrossEntropy().forward(p, np.array([0, 1, 0]))


def test_cross_entropy_rejects_non_probabilities() -> None:
    ce = nn.CrossEntropy()
    with pytest.raises(ValueError, match=r"probabilities must be > 0 \(log of 0.0 at index \(1, 1\)\)"):
        ce.forward(np.array([[0.5, 0.5], [1.0, 0.0]]), np.array([0, 0]))
    with pytest.raises(ValueError, match=r"probabilities must be > 0 \(log of -0.5"):
        ce.forward(np.array([[1.5, -0.5]]), np.array([0]))
    with pytest.raises(ValueError, match="does not look like probabilities: row 1 sums to 3"):
        ce.forward(np.array([[0.5, 0.5], [1.0, 2.0]]), np.array([0, 0]))  # logits passed by mistake


# ---- labels out of range --------------------------------------------------------------------------------


@pytest.mark.parametrize("label", [-1, 3, 10])
def test_labels_out_of_range(label: int) -> None:
    labels = np.array([0, label, 1])
    with pytest.raises(ValueError, match=rf"label {label} is out of range for 3 classes \(valid: 0..2\)"):
        nn.SoftmaxCrossEntropy().forward(_x(3, 3), labels)
    with pytest.raises(ValueError, match=rf"label {label} is out of range for 3 classes"):
        nn.CrossEntropy().forward(np.full((3, 3), 1 / 3), labels)


# ---- empty batches ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ALL_MODULES, ids=IDS)
def test_empty_batch(make) -> None:
    with pytest.raises(ValueError, match=r"empty (batch \(N = 0\)|input of shape \(0, 4\))"):
        make().forward(np.zeros((0, 4), F32))


def test_empty_batch_at_the_losses() -> None:
    with pytest.raises(ValueError, match=r"empty input of shape \(0, 3\)"):
        nn.SoftmaxCrossEntropy().forward(np.zeros((0, 3), F32), np.zeros(0, int))
    with pytest.raises(ValueError, match=r"empty input of shape \(0, 3\)"):
        nn.CrossEntropy().forward(np.zeros((0, 3), F32), np.zeros(0, int))


# ---- invalid constructor arguments -------------------------------------------------------------------------


def test_invalid_hyperparameters_name_the_value() -> None:
    with pytest.raises(ValueError, match="p must be in \\[0, 1\\], got 1.5"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="negative_slope must be in \\[0, 1\\], got -0.1"):
        nn.LeakyReLU(-0.1)
    with pytest.raises(ValueError, match="alpha must be positive, got 0"):
        nn.ELU(0)
    with pytest.raises(ValueError, match="momentum must be in \\[0, 1\\], got 2"):
        nn.BatchNorm1d(3, momentum=2)
    with pytest.raises(ValueError, match="eps must be positive, got 0"):
        nn.BatchNorm1d(3, eps=0)
    with pytest.raises(ValueError, match="l2 must be a finite number >= 0, got -1"):
        nn.Penalty([], l2=-1)
    with pytest.raises(ValueError, match="l1 must be a finite number >= 0, got nan"):
        nn.Penalty([], l1=float("nan"))


def test_batchnorm_training_needs_two_samples() -> None:
    bn = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match=r"training needs more than 1 sample per batch.*\(1, 4\)"):
        bn.forward(_x(1, 4))
    bn.eval()
    assert bn.forward(_x(1, 4)).shape == (1, 4)  # eval mode uses the running statistics

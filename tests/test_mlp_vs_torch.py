"""The same MLP in NumPy and in PyTorch, from identical weights and batches: 100 float64 SGD
steps with losses within 1e-6 relative at every step (plain SGD written inline, p -= lr * grad,
so this does not depend on the optimizer package)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.nn as nn

torch = pytest.importorskip("torch")
from chainrule.torch_ref import to_torch  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]


STEPS = 100


def _data(seed: int, n: int, d: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((c, d)) * 2
    y = rng.integers(0, c, n)
    return centers[y] + rng.standard_normal((n, d)), y


@pytest.mark.parametrize(
    "kwargs, lr",
    [
        ({"activation": "relu"}, 0.1),
        ({"activation": "sigmoid", "init": "xavier_uniform"}, 0.5),
        ({"activation": "tanh", "batch_norm": True}, 0.1),
        ({"activation": "leaky_relu", "batch_norm": True, "dropout": 0.0}, 0.05),
        ({"activation": "elu", "init": "he_normal"}, 0.05),
    ],
)
def test_mlp_training_matches_torch(kwargs: dict, lr: float) -> None:
    X, Y = _data(0, 512, 20, 5)
    model = nn.MLP(20, [16, 12], 5, dtype=np.float64, seed=3, **kwargs)
    tmodel = to_torch(model)
    loss_fn = nn.SoftmaxCrossEntropy()
    batch = 32
    order = np.random.default_rng(1).permutation(len(X))
    losses, tlosses = [], []
    for step in range(STEPS):
        idx = order[(step * batch) % len(X) :][:batch]
        xb, yb = X[idx], Y[idx]
        # ours
        loss = loss_fn.forward(model.forward(xb), yb)
        model.backward(loss_fn.backward(), input_grad=False)
        for p in model.parameters():
            p.data -= lr * p.grad
        # torch
        tmodel.zero_grad(set_to_none=True)
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(xb)), torch.from_numpy(yb))
        tloss.backward()
        with torch.no_grad():
            for tp in tmodel.parameters():
                tp -= lr * tp.grad
        losses.append(loss)
        tlosses.append(tloss.item())
        assert loss == pytest.approx(tloss.item(), rel=1e-6), f"step {step}"
    assert losses[-1] < 0.7 * losses[0], "the model should learn the clusters"
    # the weights (and BatchNorm's running statistics) after 100 steps
    tstate = tmodel.state_dict()
    for name, a in model.state_dict().items():
        np.testing.assert_allclose(a, tstate[name].numpy(), rtol=1e-6, atol=1e-9, err_msg=name)
    # eval mode (BatchNorm on running statistics) gives the same logits
    model.eval()
    tmodel.eval()
    with torch.no_grad():
        np.testing.assert_allclose(
            model.forward(X[:64]), tmodel(torch.from_numpy(X[:64])).numpy(), rtol=1e-6, atol=1e-9
        )


def test_mlp_builder_layout_and_seed() -> None:
    m = nn.MLP(8, [6, 4], 3, batch_norm=True, dropout=0.25, activation="tanh", seed=5)
    kinds = [type(layer).__name__ for layer in m]
    assert kinds == [
        "Linear", "BatchNorm1d", "Tanh", "Dropout",
        "Linear", "BatchNorm1d", "Tanh", "Dropout",
        "Linear",
    ]  # fmt: skip
    assert m[0].bias is None and m[8].bias is not None  # BatchNorm's beta replaces the hidden biases
    assert m.dtype == np.float32
    twin = nn.MLP(**m.config())
    for (na, a), (nb, b) in zip(m.state_dict().items(), twin.state_dict().items(), strict=True):
        assert na == nb
        np.testing.assert_array_equal(a, b)
    other = nn.MLP(**{**m.config(), "seed": 6})
    assert not np.array_equal(other[0].weight.data, m[0].weight.data)
    assert len(nn.MLP(784, [], 10)) == 1  # softmax regression
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        nn.MLP(4, [3], 2, activation="gelu")
    with pytest.raises(ValueError, match="dropout must be in"):
        nn.MLP(4, [3], 2, dropout=1.0)
    with pytest.raises(ValueError, match="hidden sizes must be positive"):
        nn.MLP(4, [3, 0], 2)

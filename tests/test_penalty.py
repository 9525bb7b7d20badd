"""L1/L2 penalty: value, gradient added (not overwritten), parameter selection, and its relation
to optimizer weight decay."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule.nn as nn


def _model() -> nn.MLP:
    return nn.MLP(5, [4], 3, batch_norm=True, dtype=np.float64, seed=0)


def test_value_follows_the_documented_convention() -> None:
    model = _model()
    weights = [p.data for p in model.parameters() if p.data.ndim >= 2]
    assert len(weights) == 2  # the two Linear weights; BatchNorm gamma/beta and biases excluded
    l1, l2 = 0.01, 0.3
    expected = l1 * sum(np.abs(w).sum() for w in weights) + l2 / 2 * sum((w**2).sum() for w in weights)
    assert nn.Penalty(model, l1=l1, l2=l2).loss() == pytest.approx(expected, rel=1e-12)
    assert nn.Penalty(model).loss() == 0.0
    everything = nn.Penalty(model, l2=l2, weights_only=False)
    assert len(everything.params) == len(model.parameters())
    assert everything.loss() > nn.Penalty(model, l2=l2).loss()


def test_backward_adds_to_the_model_gradient() -> None:
    model = _model()
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 5)), rng.integers(0, 3, 8)
    loss_fn = nn.SoftmaxCrossEntropy()
    loss_fn.forward(model.forward(x), y)
    model.backward(loss_fn.backward())
    before = {name: p.grad.copy() for name, p in model.named_parameters()}
    nn.Penalty(model, l1=0.02, l2=0.5).backward()
    for name, p in model.named_parameters():
        extra = 0.02 * np.sign(p.data) + 0.5 * p.data if p.data.ndim >= 2 else 0.0
        np.testing.assert_allclose(p.grad, before[name] + extra, rtol=1e-12, atol=1e-15, err_msg=name)


def test_accepts_a_list_of_params() -> None:
    layer = nn.Linear(3, 2, dtype=np.float64, rng=0)
    pen = nn.Penalty([layer.weight, layer.bias], l2=1.0)
    assert pen.params == [layer.weight]
    assert pen.loss() == pytest.approx(0.5 * (layer.weight.data**2).sum())
    with pytest.raises(TypeError, match="item 0 is ndarray, not a Param"):
        nn.Penalty([layer.weight.data], l2=1.0)


def test_l2_penalty_equals_torch_sgd_weight_decay() -> None:
    """With plain SGD, adding Penalty(l2=wd) to the loss is torch.optim.SGD(weight_decay=wd)."""
    torch = pytest.importorskip("torch")
    from chainrule.torch_ref import to_torch

    model = nn.MLP(5, [4], 3, dtype=np.float64, seed=1)
    tmodel = to_torch(model)
    pen = nn.Penalty(model, l2=0.1, weights_only=False)
    opt = torch.optim.SGD(tmodel.parameters(), lr=0.3, weight_decay=0.1)
    rng = np.random.default_rng(2)
    loss_fn = nn.SoftmaxCrossEntropy()
    for _ in range(5):
        x, y = rng.standard_normal((6, 5)), rng.integers(0, 3, 6)
        loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        pen.backward()
        for p in model.parameters():
            p.data -= 0.3 * p.grad
        opt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    for name, t in tmodel.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], t.numpy(), rtol=1e-10, err_msg=name)

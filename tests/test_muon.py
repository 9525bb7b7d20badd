"""Muon (chainrule.torch_ref.optim): the Newton-Schulz step orthogonalizes, the optimizer matches
torch.optim.Muon on matrices, treats a convolution as its (out, in*k*k) matrix, keeps normalized
weights at norm sqrt(out); OptimizerChain steps and restores several optimizers. `--optimizer muon`
and `--micro-batch` in the engine: tests/test_cnn_engine.py."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chainrule.torch_ref.optim import Muon, OptimizerChain, newton_schulz  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("shape", [(16, 40), (40, 16), (24, 24)])
def test_newton_schulz_gives_an_orthogonal_direction(shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = newton_schulz(g, steps=5)
    assert x.shape == g.shape
    s = torch.linalg.svdvals(x)
    # the quintic trades exactness for speed: singular values near 1, not at 1
    assert 0.6 < float(s.min()) and float(s.max()) < 1.25, s
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    polar = u @ vh  # the exact orthogonal factor
    cos = float((x * polar).sum() / (x.norm() * polar.norm()))
    assert cos > 0.97, cos
    with pytest.raises(ValueError, match="expected a matrix"):
        newton_schulz(torch.zeros(2, 3, 4))


@pytest.mark.parametrize(
    "momentum,nesterov,weight_decay",
    [(0.0, False, 0.0), (0.6, False, 0.0), (0.6, True, 0.0), (0.95, True, 0.0), (0.95, True, 0.5)],
)
def test_muon_matches_torch_optim_muon_on_matrices(momentum, nesterov, weight_decay):
    gen = torch.Generator().manual_seed(1)
    w0 = [torch.randn(12, 20, generator=gen), torch.randn(30, 8, generator=gen)]
    grads = [[torch.randn_like(w) for w in w0] for _ in range(4)]
    ours = [w.clone().requires_grad_() for w in w0]
    ref = [w.clone().requires_grad_() for w in w0]
    opt = Muon(ours, lr=0.05, momentum=momentum, nesterov=nesterov, ns_steps=5, weight_decay=weight_decay)
    ref_opt = torch.optim.Muon(
        ref,
        lr=0.05,
        momentum=momentum,
        nesterov=nesterov,
        ns_steps=5,
        weight_decay=weight_decay,
        adjust_lr_fn=None,
    )
    for gs in grads:
        for p, q, g in zip(ours, ref, gs, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    for p, q, w in zip(ours, ref, w0, strict=True):
        moved = (q - w).detach()
        # torch orthogonalizes in bf16, we in fp32: equal up to bf16 rounding of the update
        err = float((p - q).detach().norm() / moved.norm())
        assert err < 2e-2, err
        assert float(moved.norm()) > 0.1


def test_a_convolution_is_updated_as_its_flattened_matrix():
    gen = torch.Generator().manual_seed(2)
    conv = torch.randn(8, 3, 3, 3, generator=gen)
    grad = torch.randn_like(conv)
    p4 = conv.clone().requires_grad_()
    p2 = conv.reshape(8, 27).clone().requires_grad_()
    for p, g in ((p4, grad), (p2, grad.reshape(8, 27))):
        p.grad = g.clone()
        Muon([p], lr=0.1, momentum=0.5).step()
    np.testing.assert_allclose(p4.detach().reshape(8, 27).numpy(), p2.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_normalized_weights_keep_norm_sqrt_out_and_the_lr_sets_the_step():
    w = torch.randn(16, 4, 3, 3, generator=torch.Generator().manual_seed(3)) * 7
    p = w.clone().requires_grad_()
    opt = Muon([p], lr=0.0, momentum=0.0, normalize_weights=True)
    p.grad = torch.randn_like(p)
    opt.step()
    assert math.isclose(float(p.detach().norm()), 4.0, rel_tol=1e-5)  # sqrt(16); lr 0: only the rescale
    np.testing.assert_allclose(p.detach().numpy(), (w * 4 / w.norm()).numpy(), rtol=1e-5, atol=1e-6)
    before = p.detach().clone()
    opt.param_groups[0]["lr"] = 0.01
    p.grad = torch.randn_like(p)
    opt.step()
    step = p.detach() - before * 4 / float(before.norm())
    # an orthogonal-ish (16, 36) update has Frobenius norm about sqrt(16) = 4
    assert 0.025 < float(step.norm()) < 0.05, float(step.norm())


def test_muon_refuses_vectors_and_bad_settings():
    with pytest.raises(ValueError, match="at least 2 dimensions, got shape \\(5,\\)"):
        Muon([torch.zeros(5, requires_grad=True)])
    with pytest.raises(ValueError, match="momentum must be in \\[0, 1\\), got 1.0"):
        Muon([torch.zeros(2, 2, requires_grad=True)], momentum=1.0)
    with pytest.raises(ValueError, match="ns_steps must be >= 1"):
        Muon([torch.zeros(2, 2, requires_grad=True)], ns_steps=0)


def test_optimizer_chain_steps_all_and_round_trips_its_state():
    a = torch.nn.Parameter(torch.ones(3, 3))
    b = torch.nn.Parameter(torch.ones(3))
    chain = OptimizerChain([Muon([a], lr=0.1), torch.optim.SGD([b], lr=0.5, momentum=0.9)])
    assert len(chain.param_groups) == 2
    for _ in range(2):
        a.grad, b.grad = torch.randn(3, 3), torch.ones(3)
        chain.step()
    assert not torch.equal(a.detach(), torch.ones(3, 3)) and not torch.equal(b.detach(), torch.ones(3))
    state = copy.deepcopy(chain.state_dict())  # (torch's state_dict holds the live buffers)
    other = OptimizerChain([Muon([a], lr=0.1), torch.optim.SGD([b], lr=0.5, momentum=0.9)])
    other.load_state_dict(state)
    for i, p in ((0, a), (1, b)):  # Muon's buffer and SGD's
        assert torch.equal(
            other.optimizers[i].state[p]["momentum_buffer"], chain.optimizers[i].state[p]["momentum_buffer"]
        )
    # and the loaded chain steps as the original does (the state is all there is to it)
    a2, b2 = torch.nn.Parameter(a.detach().clone()), torch.nn.Parameter(b.detach().clone())
    loaded = OptimizerChain([Muon([a2], lr=0.1), torch.optim.SGD([b2], lr=0.5, momentum=0.9)])
    loaded.load_state_dict(state)
    ga = torch.randn(3, 3)
    a.grad, b.grad, a2.grad, b2.grad = ga, torch.ones(3), ga.clone(), torch.ones(3)
    chain.step()
    loaded.step()
    assert torch.equal(a.detach(), a2.detach()) and torch.equal(b.detach(), b2.detach())
    chain.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError, match="holds 1 optimizers, this chain has 2"):
        other.load_state_dict({"optimizers": [state["optimizers"][0]]})

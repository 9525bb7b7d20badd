"""Learning-rate schedules: hand-computed values, PyTorch's schedulers, scikit-learn's invscaling,
the seed-002 loss-ratio rule, ReduceOnPlateau against PyTorch, and resume of the stateful rules."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from pathlib import Path

import pytest

from chainrule.optim import (
    Cosine,
    LossRatio,
    ReduceOnPlateau,
    StepDecay,
    constant,
    cosine,
    exponential,
    inverse_scaling,
    make_schedule,
    step_decay,
)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_lrs(torch, make_sched, lr, n):
    """The lr PyTorch uses for updates 0..n-1 when its scheduler is stepped once per update."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = make_sched(opt)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_constant():
    s = constant(0.3)
    assert [s(t) for t in (0, 1, 10**6)] == [0.3, 0.3, 0.3]


def test_step_decay_seed_003_values():
    s = step_decay(0.1)  # x0.85 every 250 steps
    assert s(0) == 0.1
    assert s(249) == 0.1
    assert s(250) == pytest.approx(0.085, rel=1e-15)
    assert s(499) == pytest.approx(0.085, rel=1e-15)
    assert s(500) == pytest.approx(0.07225, rel=1e-15)
    assert s(7999) == pytest.approx(0.1 * 0.85**31, rel=1e-15)
    assert StepDecay(1.0, gamma=0.5, step_size=3)(6) == 0.25


def test_exponential_values():
    s = exponential(2.0, gamma=0.5)
    assert [s(0), s(1), s(3)] == [2.0, 1.0, 0.25]


def test_cosine_hand_values():
    s = cosine(1.0, total_steps=110, warmup_steps=10, min_lr=0.1)
    assert s(0) == 0.0  # linear warmup from 0
    assert s(5) == pytest.approx(0.5)
    assert s(10) == pytest.approx(1.0)  # end of warmup: the peak
    assert s(60) == pytest.approx(0.1 + 0.9 * 0.5)  # middle of the decay
    assert s(35) == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi / 4)) / 2)
    assert s(110) == pytest.approx(0.1)  # end
    assert s(500) == pytest.approx(0.1)  # stays at min_lr after the end
    values = [s(t) for t in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_schedules_match_torch_schedulers(torch):
    sched = torch.optim.lr_scheduler
    n = 120
    ours = cosine(0.5, total_steps=n, min_lr=0.01)
    ref = _torch_lrs(torch, lambda o: sched.CosineAnnealingLR(o, T_max=n, eta_min=0.01), 0.5, n + 1)
    assert max(abs(ours(t) - r) for t, r in enumerate(ref)) < 1e-12
    ours = step_decay(0.5, gamma=0.85, step_size=7)
    ref = _torch_lrs(torch, lambda o: sched.StepLR(o, step_size=7, gamma=0.85), 0.5, n)
    assert max(abs(ours(t) - r) / r for t, r in enumerate(ref)) < 1e-12
    ours = exponential(0.5, gamma=0.97)
    ref = _torch_lrs(torch, lambda o: sched.ExponentialLR(o, gamma=0.97), 0.5, n)
    assert max(abs(ours(t) - r) / r for t, r in enumerate(ref)) < 1e-12


def _sklearn_stochastic_optimizers():
    """scikit-learn's `_stochastic_optimizers.py`, loaded on its own: it imports only NumPy, while
    importing it through `sklearn.neural_network` costs seconds (SciPy and the whole MLP module)."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-learn is not installed")
    path = Path(spec.submodule_search_locations[0]) / "neural_network" / "_stochastic_optimizers.py"
    mod_spec = importlib.util.spec_from_file_location("_sk_stochastic_optimizers", path)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


def test_inverse_scaling_is_sklearns_invscaling():
    s = inverse_scaling(0.4, power_t=0.5)
    assert s(0) == 0.4 and s(3) == pytest.approx(0.2) and s(99) == pytest.approx(0.04)
    opt_mod = _sklearn_stochastic_optimizers()
    sk = opt_mod.SGDOptimizer([], learning_rate_init=0.4, lr_schedule="invscaling", power_t=0.3)
    ours = inverse_scaling(0.4, power_t=0.3)
    for t in (0, 1, 7, 6000, 123456):
        sk.iteration_ends(t)  # t = samples seen so far in scikit-learn
        assert ours(t) == pytest.approx(sk.learning_rate, rel=1e-15)


def test_pure_schedules_have_no_hidden_state():
    pure = (step_decay(0.1, step_size=25), cosine(0.1, 100, 10), inverse_scaling(0.1), exponential(0.1, 0.9))
    for s in pure:
        a = s(50)
        assert s(0) != a and s(50) == a and s(99) != a and s(50) == a
        assert not s.stateful


def test_loss_ratio_hand_made_sequence():
    """Windows of 2: means 4, 2, 2, 3 -> lr changes at calls 4 (x 2/4), 6 (x 2/2), 8 (x 3/2)."""
    s = LossRatio(0.1, window=2)
    got = [s.update(v) for v in [5, 3, 2, 2, 1, 3, 3, 3, 100]]
    assert got == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.075, 0.075], rel=1e-15)
    assert s(12345) == pytest.approx(0.075)  # the step is ignored: the lr moves only via update
    assert s.stateful


def test_loss_ratio_seed_002_window_and_bounds():
    s = LossRatio(0.1)  # seed 002: window 100
    lrs = [s.update(1.0) for _ in range(199)]
    assert set(lrs) == {0.1}
    assert s.update(1.0) == 0.1  # ratio 1 at the 200th call
    for _ in range(99):
        s.update(0.5)
    assert s.update(0.5) == pytest.approx(0.05)  # the 300th call: mean 0.5 / mean 1.0
    b = LossRatio(0.1, window=1, min_lr=0.02, max_lr=0.15)
    assert [b.update(v) for v in (1.0, 0.1, 10.0, 1e6)] == pytest.approx([0.1, 0.02, 0.15, 0.15])


def test_loss_ratio_resume_mid_window():
    losses = [3.0, 2.5, 2.0, 2.2, 1.0, 1.5, 0.9, 0.8, 0.7, 1.1, 0.6]
    straight = LossRatio(0.2, window=3)
    expected = [straight.update(v) for v in losses]
    a = LossRatio(0.2, window=3)
    first = [a.update(v) for v in losses[:7]]
    state = json.loads(json.dumps(a.state_dict()))  # plain numbers: survives JSON
    b = LossRatio(0.9, window=3)
    b.load_state_dict(state)
    assert first + [b.update(v) for v in losses[7:]] == expected


PLATEAU_CONFIGS = [
    {},
    {"patience": 0},
    {"patience": 2, "factor": 0.5, "cooldown": 1},
    {"patience": 1, "threshold": 0.1, "threshold_mode": "abs", "min_lr": 0.004},
    {"patience": 1, "mode": "max", "factor": 0.2},
    {"patience": 1, "mode": "max", "threshold_mode": "abs", "threshold": 0.05, "cooldown": 2},
]


@pytest.mark.parametrize("kw", PLATEAU_CONFIGS)
def test_reduce_on_plateau_matches_torch(torch, kw):
    metrics = [1.0, 0.9, 0.95, 0.9, 0.89995, 0.91, 0.5, 0.6, 0.6, 0.6, 0.49, 0.7, 0.7, 0.7, 0.7] * 3
    metrics += [0.3, 0.31, 0.29, 0.28, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35, 0.35]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    ours = ReduceOnPlateau(0.1, **kw)
    got, want = [], []
    for m in metrics:
        ref.step(m)
        want.append(opt.param_groups[0]["lr"])
        got.append(ours.update(m))
    assert got == pytest.approx(want, rel=1e-15)
    assert len(set(want)) > 1  # the sequence does trigger cuts


def test_reduce_on_plateau_hand_values_and_resume():
    s = ReduceOnPlateau(1.0, factor=0.5, patience=1)
    got = [s.update(v) for v in (3.0, 3.0, 3.0, 2.0, 2.5, 2.5, 2.5)]
    assert got == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    state = json.loads(json.dumps(s.state_dict()))
    r = ReduceOnPlateau(7.0)
    r.load_state_dict(state)
    assert [r.update(v) for v in (2.5, 1.0, 1.0)] == [s.update(v) for v in (2.5, 1.0, 1.0)]


def test_make_schedule_names():
    assert isinstance(make_schedule("step", 0.1), StepDecay)
    assert make_schedule("step_decay", 0.1, gamma=0.5, step_size=2)(4) == 0.025
    assert make_schedule("constant", 0.2)(99) == 0.2
    assert make_schedule("exponential", 1.0, gamma=0.5)(2) == 0.25
    assert isinstance(make_schedule("Cosine", 0.1, total_steps=10), Cosine)
    assert make_schedule("invscaling", 1.0, power_t=1.0)(3) == 0.25
    assert make_schedule("inverse_scaling", 1.0)(3) == 0.5
    assert isinstance(make_schedule("plateau", 0.1, patience=3), ReduceOnPlateau)
    assert make_schedule("loss-ratio", 0.1, window=5).window == 5


def test_the_config_offers_exactly_the_schedules_make_schedule_builds():
    """train/config.py keeps its own copy of the names (so the CLI starts without importing NumPy)."""
    from chainrule.optim.schedules import SCHEDULES
    from chainrule.train.config import SCHEDULES as CONFIG_SCHEDULES

    assert CONFIG_SCHEDULES == SCHEDULES


def test_warmup_fraction_places_the_peak_at_a_share_of_the_run_and_follows_its_length():
    from chainrule.train.config import load_recipe
    from chainrule.train.trainer import build_schedule

    # the fast recipes: the triangle's peak where their fixed warmup_steps put it before
    for name, total, peak in (("cifar10-fast", 1564, 360), ("cifar10-fast-15", 4692, 1079)):
        cfg = load_recipe(name)
        sched = build_schedule(cfg, total)
        lrs = [sched(s) for s in range(total)]
        assert max(range(total), key=lrs.__getitem__) == peak
    cfg = load_recipe("cifar10-fast")
    sched = build_schedule(cfg, 1000)  # a shorter run (another --epochs, or --time-budget)
    assert max(range(1000), key=lambda s: sched(s)) == 230
    assert sched(230) == pytest.approx(cfg.lr)

"""The torch engine under the one trainer: same initial weights as the NumPy engine, agreement step by
step through the trainer, bit-identical resume, same seed same metrics, NaN stop, models moving
between engines, and one-line errors for the new flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import chainrule.train.torch_engine as torch_engine  # noqa: E402
from chainrule.cli import main  # noqa: E402
from chainrule.nn import MLP  # noqa: E402
from chainrule.torch_ref import bn_state_name_map  # noqa: E402
from chainrule.train import TrainConfig, Trainer, load_checkpoint, prepare, synthetic, train_run  # noqa: E402
from chainrule.train.compare import compare_engines, max_relative_difference  # noqa: E402
from chainrule.train.engine import make_engine  # noqa: E402
from chainrule.train.run import evaluate_run  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def cfg_of(**kw) -> TrainConfig:
    base = dict(
        dataset="synthetic",
        hidden_sizes=[16],
        epochs=2.0,
        batch_size=32,
        seed=3,
        train_eval_size=200,
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base).validate()


@pytest.fixture(scope="module")
def data():
    return prepare(synthetic(), cfg_of())


@pytest.fixture(scope="module")
def data64():
    return prepare(synthetic(), cfg_of(dtype="float64"))


# ---- initial weights --------------------------------------------------------------------------
# What the design promises (README "Two engines under one trainer", torch_engine's docstring):
# - the NumPy engine's MLP is `chainrule.nn.MLP(in, cfg.hidden_sizes, classes, activation, dropout,
#   batch_norm, init=cfg.init, init_std=cfg.init_std, dtype=cfg.dtype, seed=cfg.seed)`;
# - the torch engine's MLP holds those same arrays, bit for bit, as torch tensors of the configured
#   dtype (torch's generator cannot reproduce NumPy's streams, so "same config and seed, same
#   initial weights" means equal arrays, not two equal draws);
# - each `--init` scheme is the distribution that torch's own initializer draws (TORCH_INITS), so
#   the torch engine's weights are distributed as if torch had initialized them itself.
# The references below are built here, from the config's values and from torch.nn.init, never
# through the engines' builders, so a builder that drops a key or a scheme that drifts from torch's
# fails even though both engines would still agree with each other.


def _zero(t) -> None:
    torch.nn.init.zeros_(t)


TORCH_INITS = {  # scheme -> (fills the weight as torch would, fills the bias as torch would)
    "torch": (lambda w, std: None, lambda b: None),  # nn.Linear.reset_parameters, already applied
    "normal": (lambda w, std: torch.nn.init.normal_(w, 0.0, std), _zero),
    "zeros": (lambda w, std: _zero(w), _zero),
    "xavier_uniform": (lambda w, std: torch.nn.init.xavier_uniform_(w), _zero),
    "xavier_normal": (lambda w, std: torch.nn.init.xavier_normal_(w), _zero),
    "he_normal": (lambda w, std: torch.nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"), _zero),
}


def _torch_own_linear(scheme: str, fan_in: int, fan_out: int, std: float | None, seed: int):
    torch.manual_seed(seed)
    layer = torch.nn.Linear(fan_in, fan_out, dtype=torch.float64)
    fill_weight, fill_bias = TORCH_INITS[scheme]
    with torch.no_grad():
        fill_weight(layer.weight, std)
        fill_bias(layer.bias)
    return layer.weight.detach().numpy(), layer.bias.detach().numpy()


def _same_distribution(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    """Two-sample Kolmogorov-Smirnov test: the KS statistic of two samples of n and m draws from one
    distribution exceeds c(alpha) * sqrt((n + m) / (n m)) with probability alpha, so p > 1e-4 is the
    size-aware tolerance (about 0.005 in the statistic for 1.2M draws, 0.048 for 4,000). A constant
    reference (zeros) must be matched exactly."""
    from scipy import stats

    ours, theirs = ours.astype(np.float64).ravel(), theirs.astype(np.float64).ravel()
    if np.ptp(theirs) == 0:
        np.testing.assert_array_equal(ours, np.full_like(ours, theirs[0]), err_msg=what)
        return
    res = stats.ks_2samp(ours, theirs)
    assert res.pvalue > 1e-4, f"{what}: KS statistic {res.statistic:.4f}, p = {res.pvalue:.2g}"


INIT_STD = 0.05  # for --init normal: not the default 1e-4, so a dropped init_std shows


@pytest.mark.parametrize("scheme", sorted(TORCH_INITS))
def test_the_torch_engine_weights_are_distributed_as_torch_initializes(scheme):
    """300 -> 4000 -> 10: 1.2M first-layer weights and 4,000 biases, 40k output weights: the test
    sees the bias bound off by 10% (KS statistic 0.05 against a tolerance of 0.048 at 4,000)."""
    cfg = cfg_of(backend="torch", hidden_sizes=[4000], init=scheme, init_std=INIT_STD, dtype="float64")
    engine = make_engine(cfg, (300,), 10, np.zeros(300), np.ones(300))
    state = {k: v.detach().numpy() for k, v in engine.model.state_dict().items()}
    for i, name in enumerate(("0", "2")):
        w, b = state[f"{name}.weight"], state[f"{name}.bias"]
        fan_out, fan_in = w.shape
        ref_w, ref_b = _torch_own_linear(scheme, fan_in, fan_out, INIT_STD, seed=100 + i)
        _same_distribution(w, ref_w, f"{scheme} {name}.weight")
        _same_distribution(b, ref_b, f"{scheme} {name}.bias")


def test_torch_own_initializers_are_the_documented_distributions():
    """The references above against the formulas `chainrule.nn.init` documents (one-sample KS)."""
    from scipy import stats

    fan_in, fan_out = 800, 500
    bound, glorot = 1 / np.sqrt(fan_in), np.sqrt(6 / (fan_in + fan_out))
    documented = {
        "torch": stats.uniform(-bound, 2 * bound),
        "normal": stats.norm(0, INIT_STD),
        "xavier_uniform": stats.uniform(-glorot, 2 * glorot),
        "xavier_normal": stats.norm(0, np.sqrt(2 / (fan_in + fan_out))),
        "he_normal": stats.norm(0, np.sqrt(2 / fan_in)),
    }
    for scheme, dist in documented.items():
        w, b = _torch_own_linear(scheme, fan_in, fan_out, INIT_STD, seed=0)
        assert stats.kstest(w.ravel(), dist.cdf).pvalue > 1e-4, scheme
        if scheme == "torch":
            assert stats.kstest(b, dist.cdf).pvalue > 1e-4, scheme
        else:
            assert not b.any(), scheme


MODELS = {  # name -> (the model's options, the torch engine's own)
    "plain": (dict(), dict()),
    "batch-norm": (dict(batch_norm=True), dict()),
    "batch-norm-manual": (dict(batch_norm=True), dict(batch_norm_impl="manual")),
    "normal-init": (dict(init="normal"), dict()),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("model", sorted(MODELS))
def test_both_engines_start_from_the_mlp_the_config_and_seed_define(dtype, model):
    options, torch_options = MODELS[model]
    cfg = cfg_of(dtype=dtype, hidden_sizes=[20, 12], seed=11, init_std=INIT_STD, **options)
    want = MLP(
        7,
        [20, 12],
        3,
        activation=cfg.activation,
        batch_norm=cfg.batch_norm,
        init=cfg.init,
        init_std=INIT_STD,
        dtype=np.dtype(dtype),
        seed=11,
    ).state_dict()
    mean, std = np.zeros(7), np.ones(7)
    ours = make_engine(cfg, (7,), 3, mean, std).model_state()
    torch_model = make_engine(cfg.replace(backend="torch", **torch_options), (7,), 3, mean, std).model
    rename = bn_state_name_map(torch_model)
    theirs = {rename.get(k, k): v for k, v in torch_model.state_dict().items()}
    assert set(ours) == set(want) and set(want) <= set(theirs)
    for name, value in want.items():
        np.testing.assert_array_equal(ours[name], value, err_msg=f"numpy {name}")
        assert ours[name].dtype == value.dtype, name
        if name.endswith("num_batches_tracked"):
            assert int(theirs[name]) == int(value), name
            continue
        assert theirs[name].dtype == {"float32": torch.float32, "float64": torch.float64}[dtype], name
        np.testing.assert_array_equal(theirs[name].detach().numpy(), value, err_msg=f"torch {name}")
    if cfg.batch_norm:  # and BatchNorm starts where torch's own BatchNorm1d does
        fresh = torch.nn.BatchNorm1d(20).state_dict()
        for key in ("weight", "bias", "running_mean", "running_var"):
            np.testing.assert_array_equal(want[f"1.{key}"], fresh[key].numpy(), err_msg=key)


COMPARE_CONFIGS = {
    "sgd-momentum-cosine": dict(optimizer="sgd", lr=0.05, momentum=0.9, schedule="cosine"),
    "adam-bn-l2": dict(optimizer="adam", lr=3e-3, batch_norm=True, l2=1e-3, schedule="constant"),
    "nesterov-wd-l1-step": dict(
        optimizer="sgd",
        lr=0.05,
        momentum=0.9,
        nesterov=True,
        weight_decay=1e-3,
        l1=1e-4,
        schedule="step_decay",
        decay_steps=10,
        decay_rate=0.7,
    ),
    "rmsprop-tanh": dict(optimizer="rmsprop", lr=1e-3, momentum=0.5, activation="tanh"),
    "adamw-sigmoid-bn": dict(
        optimizer="adamw", lr=3e-3, weight_decay=0.01, activation="sigmoid", batch_norm=True
    ),
    "adam-bn-manual": dict(optimizer="adam", lr=3e-3, batch_norm=True, batch_norm_impl="manual"),
    "sgd-bn-autograd": dict(
        optimizer="sgd", lr=0.05, momentum=0.9, batch_norm=True, batch_norm_impl="autograd"
    ),
}


@pytest.mark.parametrize("name", sorted(COMPARE_CONFIGS))
def test_numpy_and_torch_agree_for_100_float64_steps_through_the_trainer(data64, name):
    cfg = cfg_of(dtype="float64", hidden_sizes=[24, 16], backend="torch", **COMPARE_CONFIGS[name])
    c = compare_engines(cfg, steps=100, data=data64)
    assert c.steps == 100
    # the run really trains (otherwise agreement would be trivial)
    assert c.loss["numpy"][-10:].mean() < 0.7 * c.loss["numpy"][:5].mean()
    assert c.loss_rel.max() < 1e-6, c.summary()
    assert c.param_rel.max() < 1e-6, c.summary()


def ours_default(cls_name: str, arg: str):
    """The default of `arg` in chainrule.optim's `cls_name` (what the NumPy engine uses)."""
    import inspect

    import chainrule.optim

    return inspect.signature(getattr(chainrule.optim, cls_name).__init__).parameters[arg].default


OPTIMIZER_SETTINGS = {  # name -> (the config's keys, torch's class, what its param groups must hold)
    "sgd": (
        dict(lr=0.03, momentum=0.7, nesterov=True, weight_decay=2e-3),
        "SGD",
        dict(lr=0.03, momentum=0.7, nesterov=True, weight_decay=2e-3),
    ),
    "adam": (
        dict(lr=4e-3, beta1=0.8, beta2=0.95, weight_decay=3e-3),
        "Adam",
        dict(lr=4e-3, betas=(0.8, 0.95), weight_decay=3e-3, eps=ours_default("Adam", "eps")),
    ),
    "adamw": (
        dict(lr=5e-3, beta1=0.85, beta2=0.9, weight_decay=0.05),
        "AdamW",
        dict(lr=5e-3, betas=(0.85, 0.9), weight_decay=0.05, eps=ours_default("AdamW", "eps")),
    ),
    "rmsprop": (
        dict(lr=6e-4, momentum=0.3, weight_decay=1e-4),
        "RMSprop",
        dict(
            lr=6e-4,
            momentum=0.3,
            weight_decay=1e-4,
            eps=ours_default("RMSprop", "eps"),
            alpha=ours_default("RMSprop", "alpha"),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZER_SETTINGS))
def test_each_optimizer_key_reaches_the_torch_optimizer_with_its_configured_value(data, name):
    """The engines share `optimizer_kwargs(cfg)`, so a key it drops would leave them agreeing; here
    every key is read back from torch's own param groups. The settings that have no config key
    (eps, RMSprop's alpha) must be chainrule.optim's defaults, which the NumPy engine uses."""
    keys, cls_name, want = OPTIMIZER_SETTINGS[name]
    cfg = cfg_of(backend="torch", optimizer=name, **keys)
    engine = make_engine(cfg, data.sample_shape, data.num_classes, data.mean, data.std)
    opt = engine.optimizer
    assert type(opt) is getattr(torch.optim, cls_name)
    grouped = sum(len(g["params"]) for g in opt.param_groups)
    assert grouped == len(list(engine.model.parameters()))
    for group in opt.param_groups:
        for key, value in want.items():
            assert group[key] == pytest.approx(value), (name, key, group[key])


def test_float32_drift_is_measured_not_hidden(data):
    c = compare_engines(cfg_of(batch_norm=True, hidden_sizes=[24]), steps=30, data=data)
    assert 0 < c.param_rel.max() < 1e-3  # rounding differs in float32, but stays small
    assert "float32" in c.summary()["dtype"]


def test_the_comparison_catches_a_wrong_update(data64):
    """A torch engine whose optimizer uses a 1% different learning rate must be seen as different."""
    cfg = cfg_of(dtype="float64", optimizer="sgd", lr=0.05, momentum=0.9, schedule="constant")
    a = Trainer(cfg, data64)
    b = Trainer(cfg.replace(backend="torch", lr=0.0505), data64)
    a.fit(until_step=5)
    b.fit(until_step=5)
    diff, _ = max_relative_difference(a.engine.portable_state(), b.engine.portable_state())
    assert diff > 1e-4


def test_compare_refuses_dropout(data):
    from chainrule.train import ConfigError

    with pytest.raises(ConfigError, match="dropout"):
        compare_engines(cfg_of(dropout=0.1), steps=3, data=data)


def _run(cfg, tmp: Path, until=None, resume=False):
    tr = Trainer(cfg, prepare(synthetic(), cfg), tmp)
    if resume:
        tr.resume()
    res = tr.fit(until_step=until)
    return tr, res


@pytest.mark.parametrize(
    "extra",
    [
        dict(dropout=0.2, batch_norm=True, optimizer="adam"),
        dict(dropout=0.2, batch_norm=True, batch_norm_impl="manual", optimizer="adam"),
        dict(optimizer="sgd", lr=0.05, momentum=0.9, schedule="plateau", eval_every=5),
    ],
)
def test_torch_checkpoint_resume_is_bit_identical(tmp_path, extra):
    cfg = cfg_of(backend="torch", epochs=3.0, **extra)
    full, res_full = _run(cfg, tmp_path / "full")
    _, res_a = _run(cfg, tmp_path / "split", until=23)
    assert res_a.status == "paused"
    resumed, res_b = _run(cfg, tmp_path / "split", resume=True)
    assert res_full.status == res_b.status == "completed"
    np.testing.assert_array_equal(full.history.loss, resumed.history.loss)
    a, b = full.engine.model_state(), resumed.engine.model_state()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_torch_same_seed_same_metrics(tmp_path):
    cfg = cfg_of(backend="torch", dropout=0.3, epochs=2.0, out_dir=str(tmp_path))
    r1 = train_run(cfg.replace(run_dir=str(tmp_path / "a")), quiet=True)
    r2 = train_run(cfg.replace(run_dir=str(tmp_path / "b")), quiet=True)
    m1 = (r1.run_dir / "metrics.jsonl").read_text().splitlines()
    m2 = (r2.run_dir / "metrics.jsonl").read_text().splitlines()
    drop_time = [{k: v for k, v in json.loads(line).items() if k != "time"} for line in m1]
    assert drop_time == [{k: v for k, v in json.loads(line).items() if k != "time"} for line in m2]
    r3 = train_run(cfg.replace(run_dir=str(tmp_path / "c"), seed=4), quiet=True)
    assert r3.summary["final"]["train_loss"] != r1.summary["final"]["train_loss"]


def test_torch_nan_stop_keeps_a_finite_checkpoint(tmp_path):
    cfg = cfg_of(backend="torch", optimizer="sgd", lr=1e6, momentum=0.9, epochs=3.0)
    tr, res = _run(cfg, tmp_path)
    assert res.status == "diverged" and "Try a smaller --lr" in res.message
    state = load_checkpoint(tmp_path / "checkpoint.npz")
    assert state["engine"]["backend"] == "torch"
    assert all(np.isfinite(v).all() for v in state["engine"]["model"].values())
    assert all(bool(torch.isfinite(p).all()) for p in tr.model.parameters())


def test_a_model_trained_on_one_engine_is_evaluated_on_the_other(tmp_path):
    for trained_on in ("numpy", "torch"):
        cfg = cfg_of(backend=trained_on, dtype="float64", batch_norm=True, run_dir=str(tmp_path / trained_on))
        run = train_run(cfg, quiet=True)
        final = run.summary["final"]
        for backend in ("numpy", "torch"):
            res = evaluate_run(run.run_dir, backend=backend)
            assert res["test_acc"] == final["test_acc"], (trained_on, backend)
            assert res["test_loss"] == pytest.approx(final["test_loss"], rel=1e-9)


def test_a_checkpoint_of_one_engine_does_not_resume_on_the_other(tmp_path):
    cfg = cfg_of(backend="torch")
    _run(cfg, tmp_path, until=5)
    tr = Trainer(cfg.replace(backend="numpy"), prepare(synthetic(), cfg), tmp_path)
    with pytest.raises(ValueError, match="torch engine"):
        tr.resume()


# ---- command line -------------------------------------------------------------------------------
TINY = ["--dataset", "synthetic", "--hidden-sizes", "16", "--batch-size", "32", "--quiet", "--threads", "1"]


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


BAD_FLAGS = [
    (["--backend", "jax"], "invalid choice"),
    (["--precision", "fp16"], "invalid choice"),
    (["--device", "tpu"], "invalid choice"),
    (["--batch-norm-impl", "fast"], "invalid choice"),
    (["--threads", "0"], "threads"),
    (["--device", "cuda"], "needs --backend torch"),
    (["--precision", "bf16"], "needs --backend torch"),
    (["--batch-norm-impl", "manual"], "needs --backend torch"),
    (["--backend", "torch", "--precision", "bf16", "--dtype", "float64"], "precision"),
]


@pytest.mark.parametrize("flags,expect", BAD_FLAGS)
def test_bad_engine_flags_give_one_line_and_exit_2(tmp_path, capsys, flags, expect):
    rc, out, err = run_cli(["train", *TINY, "--out-dir", tmp_path, *flags], capsys)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chainrule: error:") and expect in lines[0]
    assert not any(tmp_path.iterdir())  # nothing was written


def test_bf16_on_a_cpu_without_support_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch_engine, "cpu_flags", lambda: {"avx2", "fma", "avx512f"})
    rc, _, err = run_cli(
        ["train", *TINY, "--out-dir", tmp_path, "--backend", "torch", "--precision", "bf16"], capsys
    )
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "neither AVX512-BF16 nor AMX" in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("flags", [{"avx512f", "avx512_bf16"}, {"avx512_bf16", "amx_bf16", "amx_tile"}])
def test_bf16_runs_where_the_cpu_has_it_with_no_rule_by_cpu_model(tmp_path, capsys, monkeypatch, flags):
    # whether bf16 pays is measured (--precision auto, tests/test_precision.py), not read off the flags
    monkeypatch.setattr(torch_engine, "cpu_flags", lambda: flags)
    rc, out, err = run_cli(
        ["train", *TINY, "--out-dir", tmp_path, "--backend", "torch", "--precision", "bf16", "--epochs", "1"],
        capsys,
    )
    assert rc == 0, err
    (run_dir,) = tmp_path.iterdir()
    engine = json.loads((run_dir / "summary.json").read_text())["engine"]
    assert engine.startswith("torch ") and " cpu bf16 float32, 1 threads" in engine


def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    rc, _, err = run_cli(
        ["train", *TINY, "--out-dir", tmp_path, "--backend", "torch", "--device", "cuda"], capsys
    )
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "no CUDA device" in err


def test_train_with_torch_backend_writes_a_normal_run_folder(tmp_path, capsys):
    rc, out, err = run_cli(
        ["train", *TINY, "--out-dir", tmp_path, "--backend", "torch", "--epochs", "2"], capsys
    )
    assert rc == 0, err
    run = next(tmp_path.iterdir())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["engine"].startswith("torch") and summary["final"]["test_acc"] > 0.8
    assert (run / "report.html").is_file() and (run / "model.npz").is_file()
    rc, out, err = run_cli(["predict", run, "--backend", "torch", _png(tmp_path)], capsys)
    assert rc == 0 and "class" in out


def _png(tmp_path: Path) -> Path:
    from PIL import Image

    path = tmp_path.parent / "img.png"
    Image.fromarray(np.full((8, 8), 128, np.uint8)).save(path)
    return path


def test_compare_command_writes_csv_plot_and_summary(tmp_path, capsys):
    rc, out, err = run_cli(
        ["compare", *TINY, "--out-dir", tmp_path, "--dtype", "float64", "--steps", "20", "--batch-norm"],
        capsys,
    )
    assert rc == 0, err
    assert "numpy vs torch, 20 steps in float64" in out
    folder = next(tmp_path.iterdir())
    lines = (folder / "compare.csv").read_text().splitlines()
    assert lines[0].startswith("step,loss_numpy,loss_torch") and len(lines) == 21
    assert (folder / "compare.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["max_param_rel_diff"] < 1e-6 and summary["steps"] == 20
    rc, out, err = run_cli(
        [
            "compare",
            *TINY,
            "--out-dir",
            tmp_path,
            "--steps",
            "5",
            "--batch-norm-impl",
            "manual",
            "--batch-norm",
        ],
        capsys,
    )
    assert rc == 0 and "float32" in out, err

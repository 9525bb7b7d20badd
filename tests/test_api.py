"""The notebook API: `chainrule.fit` resolves keys exactly as `chainrule train` does and returns a
`Run` (summary, history, config, predict, evaluate, the Jupyter view); `chainrule.load_run`;
TrainConfig checks its keys and types when it is built, with the messages of the TOML path."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import chainrule
from chainrule.api import resolve_fit_config
from chainrule.cli import build_parser, resolve_config
from chainrule.train.config import ConfigError, TrainConfig, load_toml
from chainrule.train.prepare import load_raw

KEYS = dict(dataset="synthetic", hidden_sizes=[8], steps=12, threads=1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return chainrule.fit(**KEYS, out_dir=str(tmp_path_factory.mktemp("fit")), quiet=True)


def test_import_chainrule_stays_light_and_the_api_is_lazy():
    code = (
        "import sys, chainrule\n"
        "before = sorted(m for m in ('numpy', 'torch', 'matplotlib') if m in sys.modules)\n"
        "chainrule.fit, chainrule.load_run, chainrule.Run, chainrule.TrainConfig\n"
        "after = sorted(m for m in ('torch', 'matplotlib', 'PIL') if m in sys.modules)\n"
        "print(before, after)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        chainrule.fitt  # noqa: B018


@pytest.mark.parametrize(
    "keys, message",
    [
        ({"lrr": 0.1}, "unknown key 'lrr' (did you mean 'lr'?)"),
        ({"lr": "big"}, "lr = 'big' should be float"),
        ({"hidden_sizes": [1.5]}, "hidden_sizes = [1.5] should be a list of integers"),
        ({"batch_size": True}, "batch_size = True should be int"),
        ({"early_stopping": 1}, "early_stopping = 1 should be bool"),
    ],
)
def test_trainconfig_checks_keys_and_types_as_a_config_file_does(tmp_path, keys, message):
    with pytest.raises(ConfigError) as built:
        TrainConfig(**keys)
    assert str(built.value) == f"TrainConfig: {message}"
    toml = tmp_path / "c.toml"
    toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items()))
    with pytest.raises(ConfigError) as read:
        load_toml(toml)
    assert str(read.value) == f"{toml}: {message}"  # one validator, the same words
    with pytest.raises(ConfigError) as fitted:
        chainrule.fit(**keys)
    assert str(fitted.value) == f"fit: {message}"


def test_trainconfig_still_builds_and_replaces():
    cfg = TrainConfig(lr=1, hidden_sizes=[10])
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.replace(seed=3).seed == 3 and cfg.replace(seed=3).lr == 1.0
    with pytest.raises(ConfigError, match="TrainConfig: name given twice"):
        TrainConfig("n", "", 0, "runs", None, "mnist", lr=1, name="x")  # name twice
    assert TrainConfig("n").name == "n"


@pytest.mark.parametrize(
    "flags, keys",
    [
        (["--recipe", "seed003-relu", "--epochs", "1"], dict(recipe="seed003-relu", epochs=1)),
        (["--recipe", "cifar10-muon", "--steps", "5"], dict(recipe="cifar10-muon", steps=5)),
        (
            ["--dataset", "fashion-mnist", "--hidden-sizes", "30", "20"],
            dict(dataset="fashion-mnist", hidden_sizes=[30, 20]),
        ),
        ([], {}),
    ],
)
def test_fit_resolves_keys_as_chainrule_train(flags, keys):
    assert resolve_fit_config(**keys) == resolve_config(build_parser().parse_args(["train", *flags]))


def test_fit_config_file_dict_and_trainconfig(tmp_path):
    toml = tmp_path / "my.toml"
    toml.write_text("[optim]\nlr = 0.3\nepochs = 7\n")
    cli = resolve_config(build_parser().parse_args(["train", "--config", str(toml), "--steps", "4"]))
    assert resolve_fit_config(str(toml), steps=4) == cli
    assert resolve_fit_config({"optim": {"lr": 0.3, "epochs": 7}}, steps=4) == cli
    base = TrainConfig(lr=0.3, epochs=7)
    assert resolve_fit_config(base, steps=4).steps == 4 and resolve_fit_config(base, steps=4).epochs is None
    with pytest.raises(ConfigError, match="not both"):
        resolve_fit_config(base, recipe="mnist-fast")
    with pytest.raises(ConfigError, match="recipe 'mnist-fst' .*did you mean 'mnist-fast'"):
        resolve_fit_config(recipe="mnist-fst")
    with pytest.raises(ConfigError, match="epochs"):
        resolve_fit_config(epochs=-1)  # validated like the command line


def test_run_summary_history_config(run):
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert run.summary == summary and run.status == "completed"
    assert len(run.history) == summary["evaluations"] > 0
    assert run.history[-1]["step"] == summary["steps"] == 12
    assert run.config == load_toml(run.run_dir / "config.toml") and run.config.hidden_sizes == [8]
    assert (
        repr(run)
        == f"Run({str(run.run_dir)!r}: completed, test accuracy {100 * summary['final']['test_acc']:.2f}%)"
    )


def test_history_to_pandas(run):
    pd = pytest.importorskip("pandas")
    df = run.history.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == len(run.history)
    assert df["val_acc"].tolist() == [e["val_acc"] for e in run.history]


def test_predict_and_evaluate_match_the_summary(run):
    raw = load_raw(run.config)
    pred = run.predict(raw.x_test)
    assert pred.shape == raw.y_test.shape
    final = run.summary["final"]["test_acc"]
    assert np.mean(pred == raw.y_test) == pytest.approx(final, abs=1e-12)
    assert np.allclose(run.predict_proba(raw.x_test[:5]).sum(axis=1), 1.0)
    assert (run.predict(raw.x_test.reshape(len(raw.x_test), -1)) == pred).all()  # flattened works too
    assert run.evaluate()["test_acc"] == pytest.approx(final, abs=1e-12)
    with pytest.raises(ConfigError, match="must be uint8"):
        run.predict(raw.x_test.astype(np.float32))
    with pytest.raises(ConfigError, match="do not fit the model's input"):
        run.predict(raw.x_test[:, :, :2])


def test_repr_html_has_the_headline_and_curves(run):
    page = run._repr_html_()
    assert f"{100 * run.summary['final']['test_acc']:.2f}%" in page
    assert page.count("src='data:image/png;base64,") == 2


def test_load_run(run, tmp_path):
    again = chainrule.load_run(run.run_dir)
    assert again.summary == run.summary and again.run_dir == run.run_dir
    with pytest.raises(ConfigError, match="not a chainrule run folder"):
        chainrule.load_run(tmp_path)

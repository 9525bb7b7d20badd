"""`--log` as a config key: one validator for the command line, TOML files, `TrainConfig(...)`,
`chainrule.fit` and sweep specs; a logger's package missing is one line naming the extra; and
nothing imports TensorBoard or MLflow unless a run asks for it."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from chainrule.cli import main
from chainrule.sweep import SpecError, parse_spec
from chainrule.train.config import ConfigError, TrainConfig, dumps, load_toml, resolve
from chainrule.train.run import train_run


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    "flags",
    [
        ["--log", "tensorboard", "mlflow"],
        ["--log", "tensorboard,mlflow"],
        ["--log", "tensorboard", "--log", "mlflow"],
    ],
)
def test_log_flag_forms(flags, capsys):
    rc, out, err = run_cli(["train", *flags, "--print-config"], capsys)
    assert rc == 0, err
    assert tomllib.loads(out)["log"] == ["tensorboard", "mlflow"]


def test_log_config_round_trip_and_defaults(tmp_path, capsys):
    cfg = TrainConfig()
    assert cfg.log == [] and cfg.mlflow_uri == "sqlite:///mlflow.db" and cfg.mlflow_experiment == "chainrule"
    cfg = resolve(changes={"log": ["mlflow"], "mlflow_uri": "sqlite:///x.db"})
    path = tmp_path / "c.toml"
    path.write_text(dumps(cfg))
    assert load_toml(path).log == ["mlflow"] and load_toml(path).mlflow_uri == "sqlite:///x.db"
    (tmp_path / "g.toml").write_text('[run]\nlog = "tensorboard"\n')  # a string names one logger (or several)
    assert load_toml(tmp_path / "g.toml").log == ["tensorboard"]
    rc, out, _ = run_cli(["train", "--config", tmp_path / "g.toml", "--log", "--print-config"], capsys)
    assert rc == 0 and tomllib.loads(out)["log"] == []  # a bare --log turns the config's loggers off
    # where a run is logged is not what it trains: not a change of recipe, not in a sweep trial's id
    assert resolve(changes={"log": ["tensorboard"]}).name == "mnist-fast"


def test_bad_log_values_are_one_line_everywhere(tmp_path, capsys):
    rc, _, err = run_cli(["train", "--log", "tensorbord", "--print-config"], capsys)
    assert rc == 2 and err.count("\n") == 1
    assert "log = 'tensorbord' is not one of tensorboard, mlflow (did you mean 'tensorboard'?)" in err
    with pytest.raises(ConfigError, match="log = 'wandb' is not one of tensorboard, mlflow"):
        TrainConfig(log=["wandb"]).validate()
    with pytest.raises(ConfigError, match=r"log = \[1\] should be a list of names"):
        TrainConfig(log=[1])
    with pytest.raises(ConfigError, match="log = .* without repeats"):
        resolve(changes={"log": ["mlflow", "mlflow"]}, source="fit")
    with pytest.raises(ConfigError, match="mlflow_uri = '' is invalid"):
        resolve(changes={"mlflow_uri": ""})
    (tmp_path / "bad.toml").write_text("log = 3\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: log = 3 should be a list of names"):
        load_toml(tmp_path / "bad.toml")
    with pytest.raises(SpecError, match="log = 'tb' is not one of"):
        spec = '[base]\ndataset = "synthetic"\nlog = ["tb"]\n[grid]\nlr = [0.1]\n'
        parse_spec("name = 'x'\n" + spec, source="spec.toml")


def test_missing_extra_is_one_line_before_any_data_loads(tmp_path, monkeypatch, capsys):
    # the package made unimportable (as when the extra is not installed): no data is read, no folder made
    import importlib.util

    real = importlib.util.find_spec
    hidden = lambda name, *a: None if name == "tensorboard" else real(name, *a)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", hidden)
    run = tmp_path / "run"
    rc, _, err = run_cli(["train", "--dataset", "mnist", "--data-dir", tmp_path / "none", "--log",
                          "tensorboard", "--run-dir", run, "--quiet"], capsys)  # fmt: skip
    assert rc == 2 and err.count("\n") == 1, err
    assert "--log tensorboard needs the tensorboard package: pip install 'chainrule[tensorboard]'" in err
    assert not run.exists()
    cfg = TrainConfig(dataset="synthetic", steps=2, log=["tensorboard"], run_dir=str(run)).validate()
    with pytest.raises(ConfigError, match=r"chainrule\[tensorboard\]"):
        train_run(cfg, quiet=True)


def test_nothing_imports_the_trackers_unless_asked():
    code = (
        "import sys, chainrule, chainrule.cli, chainrule.api, chainrule.sweep, chainrule.train.run; "
        "print(sorted(m for m in ('tensorboard', 'mlflow', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

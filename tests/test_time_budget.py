"""--time-budget: a few seconds of timing fix the number of steps; the run folder then records
those steps, so rerunning or resuming it repeats the run exactly. (No assertion on seconds: the
arithmetic is tested on given timings, the mechanics on a real run.)"""

from __future__ import annotations

import json
import tomllib

import pytest

from chainrule.cli import main
from chainrule.train import ConfigError, TrainConfig, prepare, synthetic
from chainrule.train.budget import plan_budget, steps_in_budget

TINY = ["--dataset", "synthetic", "--hidden-sizes", "16", "--batch-size", "32", "--quiet", "--threads", "1"]


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_steps_in_budget_counts_every_evaluation_and_the_last_one():
    # 10 s: one final evaluation of 1 s, then 0.1 s a step plus an evaluation (1 s) every 10 steps
    assert steps_in_budget(10.0, 0.1, 1.0, 0.1) == 45  # 45 * 0.2 + 1 = 10 s
    assert steps_in_budget(10.0, 0.1, 1.0, 0.0) == 90  # evaluating only at the end
    assert steps_in_budget(10.0, 0.1, 0.0, 0.1) == 100
    assert steps_in_budget(0.5, 0.1, 1.0, 0.1) == 0  # the final evaluation alone is over budget


def test_a_budget_run_records_its_steps_and_a_rerun_of_its_config_repeats_it(tmp_path, capsys):
    rc, _, err = run_cli(["train", *TINY, "--time-budget", "1.5", "--out-dir", tmp_path / "a"], capsys)
    assert rc == 0, err
    (run,) = (tmp_path / "a").iterdir()
    cfg = tomllib.loads((run / "config.toml").read_text())
    summary = json.loads((run / "summary.json").read_text())
    plan = summary["time_budget"]
    assert "time_budget" not in cfg and "epochs" not in cfg  # unset: the steps are the run
    assert cfg["steps"] == plan["steps"] == summary["steps"] >= 1
    assert plan["seconds"] == 1.5 and plan["step_s"] > 0 and plan["timed_steps"] >= 2
    assert plan["evals_per_step"] == pytest.approx(1 / 17)  # 540 samples, batch 32: 17 steps an epoch
    # the steps are the most that the plan's own timings fit in the budget, evaluations included
    timings = (plan["seconds"], plan["step_s"], plan["eval_s"], plan["evals_per_step"])
    assert plan["steps"] == steps_in_budget(*timings)
    assert plan["epochs"] == round(plan["steps"] / 17, 4)

    rc, _, err = run_cli(
        ["train", "--config", run / "config.toml", "--quiet", "--out-dir", tmp_path / "b"], capsys
    )
    assert rc == 0, err
    (rerun,) = (tmp_path / "b").iterdir()
    again = json.loads((rerun / "summary.json").read_text())
    assert "time_budget" not in again
    assert again["steps"] == summary["steps"] and again["final"] == summary["final"]


def test_the_budget_is_added_to_a_recipe_and_changes_nothing_else(capsys):
    rc, out, _ = run_cli(["train", "--recipe", "cifar10-fast", "--print-config"], capsys)
    assert rc == 0
    recipe = tomllib.loads(out)
    rc, out, _ = run_cli(
        ["train", "--recipe", "cifar10-fast", "--time-budget", "300", "--print-config"], capsys
    )
    assert rc == 0
    budgeted = tomllib.loads(out)
    assert "time_budget" not in recipe and budgeted.pop("time_budget") == 300.0
    assert budgeted == recipe  # the recipe's epochs stay in the config; the run replaces them (above)


def test_a_budget_too_small_for_one_step_is_refused():
    cfg = TrainConfig(dataset="synthetic", hidden_sizes=[16], batch_size=32, time_budget=1e-9).validate()
    with pytest.raises(ConfigError, match=r"time_budget = 1e-09 is invalid: .*not one step fits"):
        plan_budget(cfg, prepare(synthetic(), cfg), time_steps_s=0.01)


@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_a_bad_budget_is_one_line_and_exit_2(value, capsys, tmp_path):
    rc, _, err = run_cli(["train", *TINY, "--time-budget", value, "--out-dir", tmp_path], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "time_budget" in err
    assert not any(tmp_path.iterdir())


def test_epochs_or_steps_on_the_command_line_replace_a_recipes_budget(capsys):
    rc, out, _ = run_cli(["train", "--recipe", "cifar10-30min", "--print-config"], capsys)
    assert rc == 0 and "\ntime_budget = 1740.0" in out
    for flag in (["--epochs", "2"], ["--steps", "10"]):
        rc, out, _ = run_cli(["train", "--recipe", "cifar10-30min", *flag, "--print-config"], capsys)
        assert rc == 0 and "\ntime_budget =" not in out and "# time_budget =" in out


def test_a_budget_works_with_the_plateau_schedule_and_early_stopping(tmp_path, capsys):
    # the probe must not switch evaluations off in a way these settings refuse, and the run must
    # be the one asked for: the probe's settings stay in the probe
    for name, flags, key, value in (
        ("plateau", ["--schedule", "plateau"], "schedule", "plateau"),
        ("early", ["--early-stopping"], "early_stopping", True),
    ):
        out_dir = tmp_path / name
        rc, _, err = run_cli(
            ["train", *TINY, *flags, "--val-fraction", "0.1", "--time-budget", "1", "--out-dir", out_dir],
            capsys,
        )
        assert rc == 0, err
        (run,) = out_dir.iterdir()
        cfg = tomllib.loads((run / "config.toml").read_text())
        summary = json.loads((run / "summary.json").read_text())
        assert cfg[key] == value, name
        assert cfg["eval_each_epoch"] is True and cfg["eval_every"] == TrainConfig().eval_every, name
        assert cfg["steps"] == summary["time_budget"]["steps"], name
        evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        want = sorted(set(range(17, cfg["steps"] + 1, 17)) | {cfg["steps"]})  # epoch ends, the end
        steps = [e["step"] for e in evals]
        assert steps == (want if summary["status"] == "completed" else want[: len(steps)]), name
        assert all("val_loss" in e for e in evals), name  # what plateau and early stopping watch


@pytest.mark.parametrize("length", [{"epochs": 2.0}, {"steps": 50}])
def test_epochs_or_steps_replace_a_recipes_budget_in_a_sweep_as_on_the_command_line(length):
    """`--epochs 2` over cifar10-muon (a time-budget recipe) trains 2 epochs; a sweep whose [base]
    says `recipe = "cifar10-muon"` and `epochs = 2` must mean the same (one layering function)."""
    from chainrule.cli import build_parser, resolve_config
    from chainrule.sweep import parse_spec

    key, value = next(iter(length.items()))
    flags = ["train", "--recipe", "cifar10-muon", f"--{key}", str(value)]
    cli = resolve_config(build_parser().parse_args(flags))
    spec = parse_spec(f'name = "x"\n[base]\nrecipe = "cifar10-muon"\n{key} = {value}\n')
    (trial,) = spec.trials
    swept = TrainConfig(**trial.config)
    for cfg in (cli, swept):
        assert (cfg.time_budget, cfg.epochs, cfg.steps) == (None, length.get("epochs"), length.get("steps"))

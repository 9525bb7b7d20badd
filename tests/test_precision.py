"""`--precision auto`: bf16 only where it is measured at least 10% faster, the choice recorded in
summary.json and config.toml; `--precision fp32|bf16` force it. The rule is tested on given timings,
the mechanics on real (tiny) runs with the CPU's answer patched, so nothing depends on this CPU."""

from __future__ import annotations

import json
import tomllib

import pytest

pytest.importorskip("torch")

from chainrule.cli import main
from chainrule.train import precision, torch_engine
from chainrule.train.precision import MIN_SPEEDUP, choose_precision

TINY = ["--dataset", "synthetic", "--hidden-sizes", "16", "--batch-size", "32", "--threads", "1"]
TORCH = [*TINY, "--backend", "torch", "--epochs", "1"]


def run_cli(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize(
    ("fp32", "bf16", "chosen"),
    [
        (1.0, 0.5, "bf16"),  # 2x
        (1.0, 1.0 / MIN_SPEEDUP, "bf16"),  # exactly the threshold
        (1.0, 1.0 / 1.09, "fp32"),  # 9% faster: not enough
        (1.0, 1.0, "fp32"),
        (1.0, 2.0, "fp32"),  # bf16 slower (an AVX512-BF16 CPU without AMX, measured)
        (1.0, None, "fp32"),  # bf16 cannot run
    ],
)
def test_the_rule_on_given_timings(fp32, bf16, chosen):
    got, reason = choose_precision(fp32, bf16)
    assert got == chosen
    assert f"fp32 {fp32:.3g} s" in reason
    assert (f"bf16 {bf16:.3g} s" in reason) if bf16 is not None else ("bf16 cannot run" in reason)


def _only_run(root):
    (run_dir,) = root.iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = tomllib.loads((run_dir / "config.toml").read_text())
    return run_dir, summary, cfg


def test_auto_where_bf16_cannot_run_times_fp32_and_records_null(tmp_path, capsys, monkeypatch, host_bf16):
    monkeypatch.setattr(torch_engine, "cpu_flags", lambda: {"avx2", "avx512f"})
    rc, _, err = run_cli(["train", *TORCH, "--out-dir", tmp_path], capsys)
    assert rc == 0, err
    _, summary, cfg = _only_run(tmp_path)
    record = summary["precision"]
    assert record["chosen"] == "fp32" and record["bf16_step_s"] is None
    assert isinstance(record["fp32_step_s"], float) and record["fp32_step_s"] > 0
    assert "neither AVX512-BF16 nor AMX" in record["reason"]
    assert cfg["precision"] == "fp32"  # the choice, not "auto": a rerun trains the same
    header = next(line for line in err.splitlines() if line.startswith("precision auto"))
    assert header.startswith("precision auto -> fp32: fp32 ") and "s a step" in header


@pytest.mark.parametrize(("bf16_s", "chosen"), [(0.4, "bf16"), (0.95, "fp32")])
def test_auto_takes_bf16_only_when_measured_faster(tmp_path, capsys, monkeypatch, host_bf16, bf16_s, chosen):
    monkeypatch.setattr(torch_engine, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    timed = []

    def fake_time_steps(cfg, data, seconds):
        timed.append(cfg.precision)
        return None, {"fp32": 1.0, "bf16": bf16_s}[cfg.precision], 4

    monkeypatch.setattr(precision, "time_steps", fake_time_steps)
    rc, _, err = run_cli(["train", *TORCH, "--out-dir", tmp_path], capsys)
    assert rc == 0, err
    assert timed == ["fp32", "bf16"]
    _, summary, cfg = _only_run(tmp_path)
    assert summary["precision"] == {
        "chosen": chosen,
        "fp32_step_s": 1.0,
        "bf16_step_s": bf16_s,
        "reason": choose_precision(1.0, bf16_s)[1],
    }
    assert cfg["precision"] == chosen
    assert f"cpu {chosen} float32" in summary["engine"]  # the engine trained in the chosen precision
    assert f"precision auto -> {chosen}: bf16 {bf16_s:.3g} s, fp32 1 s a step" in err


@pytest.mark.parametrize("forced", ["fp32", "bf16"])
def test_an_explicit_precision_is_not_measured(tmp_path, capsys, monkeypatch, host_bf16, forced):
    monkeypatch.setattr(torch_engine, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(precision, "time_steps", lambda *a: pytest.fail("timed a forced precision"))
    rc, _, err = run_cli(["train", *TORCH, "--precision", forced, "--out-dir", tmp_path], capsys)
    assert rc == 0, err
    _, summary, cfg = _only_run(tmp_path)
    assert "precision" not in summary and cfg["precision"] == forced
    assert f"cpu {forced} float32" in summary["engine"] and "precision auto" not in err


def test_the_numpy_engine_is_not_measured(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(precision, "time_steps", lambda *a: pytest.fail("timed a NumPy run"))
    rc, _, err = run_cli(["train", *TINY, "--epochs", "1", "--out-dir", tmp_path], capsys)
    assert rc == 0, err
    _, summary, _ = _only_run(tmp_path)
    assert "precision" not in summary


def test_the_engine_says_whether_it_chooses():
    """The choice is the engine's (it defines `bf16_unavailable`), not a backend name in the trainer."""
    from chainrule.train.config import TrainConfig

    assert not precision.chooses_precision(TrainConfig(backend="numpy"))
    assert precision.chooses_precision(TrainConfig(backend="torch"))
    cannot = torch_engine.TorchEngine.bf16_unavailable(TrainConfig(backend="torch", dtype="float64"))
    assert cannot == "bf16 autocast needs float32 parameters, not float64"


def test_a_resumed_run_keeps_its_choice_without_measuring_again(tmp_path, capsys, monkeypatch):
    rc, _, err = run_cli(["train", *TORCH, "--epochs", "2", "--pause-at", "3", "--out-dir", tmp_path], capsys)
    assert rc == 0, err
    run_dir, first, _ = _only_run(tmp_path)
    monkeypatch.setattr(precision, "time_steps", lambda *a: pytest.fail("measured again on resume"))
    rc, _, err = run_cli(["train", "--resume", run_dir, "--quiet"], capsys)
    assert rc == 0, err
    again = json.loads((run_dir / "summary.json").read_text())
    assert again["status"] == "completed" and again["precision"] == first["precision"]


def test_the_time_budget_plans_with_the_chosen_precision(tmp_path, capsys, monkeypatch, host_bf16):
    monkeypatch.setattr(torch_engine, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    real_time_steps = precision.time_steps
    monkeypatch.setattr(
        precision,
        "time_steps",
        lambda cfg, data, s: (None, {"fp32": 1.0, "bf16": 0.5}[cfg.precision], 4),
    )
    from chainrule.train import budget

    planned = []
    real_plan = budget.plan_budget

    def spy(cfg, data, time_steps_s=None):
        planned.append(cfg.precision)
        return real_plan(cfg, data, time_steps_s=0.2)

    monkeypatch.setattr("chainrule.train.run.plan_budget", spy)
    rc, _, err = run_cli(
        ["train", *TINY, "--backend", "torch", "--time-budget", "2", "--out-dir", tmp_path], capsys
    )
    assert rc == 0, err
    assert planned == ["bf16"] and real_time_steps is budget.time_steps
    _, summary, cfg = _only_run(tmp_path)
    assert cfg["precision"] == "bf16" and summary["time_budget"]["steps"] == cfg["steps"]

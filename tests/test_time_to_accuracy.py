"""Time-to-accuracy plots: one run's (report/plots.time_to_accuracy) and the cross-recipe plot
(time_to_accuracy_runs, benchmarks/plot_time_to_accuracy.py)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from chainrule.report import time_to_accuracy, time_to_accuracy_runs

PNG = b"\x89PNG\r\n\x1a\n"
_SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "plot_time_to_accuracy.py"


def test_a_run_without_evaluations_draws_no_legend_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "No artists with labels found to put in legend" fails here
        png = time_to_accuracy([])
    assert png.startswith(PNG)


def test_runs_plot_one_line_per_label_and_a_star_per_final():
    import matplotlib.pyplot as plt

    drawn = []
    real_close = plt.close

    def keep(fig=None):  # look at the figure before _to_png closes it
        if fig is not None and hasattr(fig, "axes"):
            drawn.append([(line.get_label(), len(line.get_xdata())) for line in fig.axes[0].lines])
        real_close(fig)

    curves = {"cifar10-94 seed 0": [(300.0, 0.76), (600.0, 0.87)], "cifar10-94 seed 1": [(310.0, 0.75)]}
    finals = {"cifar10-94 seed 0": (900.0, 0.94)}
    try:
        plt.close = keep
        png = time_to_accuracy_runs(curves, finals, marks=(5.0,))
    finally:
        plt.close = real_close
    assert png.startswith(PNG)
    (lines,) = drawn
    labelled = [(name, n) for name, n in lines if not name.startswith("_")]
    assert labelled == [("cifar10-94 seed 0", 2), ("cifar10-94 seed 1", 1)]
    assert len(lines) == 2 + 1 + 1  # two curves, one star, one 5-minute mark


def _fake_run(root: Path, name: str, seed: int, evals: list[tuple[float, float]], final: float) -> Path:
    d = root / f"{name}-{seed}"
    d.mkdir()
    (d / "config.toml").write_text(f'name = "{name}"\nseed = {seed}\n')
    (d / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": i, "time": t, "test_acc": a}) + "\n" for i, (t, a) in enumerate(evals))
    )
    (d / "summary.json").write_text(json.dumps({"final": {"test_acc": final}, "train_time_s": evals[-1][0]}))
    return d


def test_the_script_reads_run_folders(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("plot_tta", _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["plot_tta"] = module
    try:
        spec.loader.exec_module(module)
        a = _fake_run(tmp_path, "cifar10-94", 0, [(300.0, 0.76), (1700.0, 0.937)], 0.944)
        label, points, final = module.run_curve(a)
        assert label == "cifar10-94 seed 0" and points == [(300.0, 0.76), (1700.0, 0.937)]
        assert final == (1700.0, 0.944)
        out = tmp_path / "tta.png"
        assert module.main([str(a), "--out", str(out)]) == 0 and out.read_bytes().startswith(PNG)
        assert module.main([str(tmp_path), "--out", str(out)]) == 2
        assert "no metrics.jsonl" in capsys.readouterr().err
        # the same recipe and seed twice (bf16 and fp32): two lines, each named by its precision
        b = _fake_run(tmp_path, "cifar10-94", 1, [(200.0, 0.8)], 0.94)
        c = tmp_path / "fp32-copy"
        shutil.copytree(b, c)
        for d, precision in ((b, "bf16"), (c, "fp32")):
            (d / "config.toml").write_text(f'name = "cifar10-94"\nseed = 1\nprecision = "{precision}"\n')
        assert module.main([str(b), str(c), "--out", str(out)]) == 0
        assert "(2 runs)" in capsys.readouterr().out
    finally:
        sys.modules.pop("plot_tta", None)

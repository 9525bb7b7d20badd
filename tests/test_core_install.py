"""The plain install (`pip install chainrule`, no extra) trains and draws: matplotlib and Pillow are
core dependencies, and a run where matplotlib still cannot be imported finishes with one line."""

from __future__ import annotations

import io
import json
import re
import sys
import tomllib
from pathlib import Path

from chainrule.train import TrainConfig
from chainrule.train.run import train_run

ROOT = Path(__file__).resolve().parents[1]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_core_dependencies_draw_the_plots_and_read_images():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {"numpy", "matplotlib", "pillow"} <= _names(project["dependencies"])
    # the README's first command installs no extra and trains
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e . && chainrule train" in readme


def test_a_run_without_matplotlib_completes_with_one_line(tmp_path, monkeypatch):
    # None in sys.modules: `import matplotlib` raises ImportError, as where it is not installed
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    cfg = TrainConfig(dataset="synthetic", hidden_sizes=[8], batch_size=64, epochs=1, seed=0)
    cfg.run_dir = str(tmp_path / "run")
    err = io.StringIO()
    res = train_run(cfg, stream=err)
    assert res.status == "completed"
    run = Path(res.run_dir)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final"]["test_acc"] is not None
    assert not list(run.glob("*.png"))
    html = (run / "report.html").read_text()
    assert "data:image/png" not in html and f"{100 * summary['final']['test_acc']:.2f}%" in html
    said = [line for line in err.getvalue().splitlines() if "plots" in line]
    assert said == [
        "chainrule: no plots: matplotlib cannot be imported here (pip install matplotlib): "
        "the run writes everything else, report.html without its plots"
    ]
    assert "Traceback" not in err.getvalue()

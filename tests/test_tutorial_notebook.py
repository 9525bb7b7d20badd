"""docs/tutorial.ipynb executes from top to bottom (through nbmake, as `python -m pytest --nbmake
docs/tutorial.ipynb` does), leaves the project as it was, and is stored without outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


def test_tutorial_is_stored_without_outputs():
    # outputs (base64 plots, timings, temp paths) would make every re-run a large, noisy diff
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code, "the tutorial has no code cells"
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count") is not None]
    assert not dirty, f"code cells {dirty} of {NOTEBOOK.name} carry outputs: clear them before committing"


def test_tutorial_notebook_executes(tmp_path):
    for module in ("nbmake", "ipykernel", "torch", "pandas", "matplotlib"):
        pytest.importorskip(module)  # the test and torch extras install them all
    before = sorted(p.name for p in NOTEBOOK.parent.iterdir())
    # TMPDIR: the notebook's run folders (tempfile.mkdtemp) land in this test's folder, which pytest prunes
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake", str(NOTEBOOK)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"{NOTEBOOK.name} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"
    assert "1 passed" in proc.stdout, proc.stdout[-2000:]
    # the runs went to the temp folder: nothing new beside the notebook (its working directory)
    assert sorted(p.name for p in NOTEBOOK.parent.iterdir()) == before
    assert any(tmp_path.glob("chainrule-tutorial-*/sweep/trials/*/summary.json"))

"""`chainrule sweep` loads Ray only for --backend ray, Optuna only for sampler = "tpe", and
plotting/torch only when used."""

from __future__ import annotations

import subprocess
import sys


def test_sweep_and_cli_import_no_heavy_modules():
    code = (
        "import sys, chainrule.cli, chainrule.sweep, chainrule.sweep.backends, chainrule.report; "
        "heavy = ('ray', 'optuna', 'torch', 'matplotlib', 'PIL', 'rich'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""The NumPy engine never imports torch (nor matplotlib/Pillow at import time)."""

from __future__ import annotations

import subprocess
import sys


def test_engine_import_does_not_load_torch() -> None:
    code = (
        "import sys, chainrule, chainrule.nn, chainrule.nn.serialization, chainrule.nn.scalar_reference, "
        "chainrule.gradcheck\n"
        "bad = sorted(m for m in ('torch', 'matplotlib', 'PIL') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr

"""`import chainrule.data` stays light: no torch, Pillow, matplotlib or network stack until used."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_light():
    heavy = "('torch', 'PIL', 'matplotlib', 'urllib.request', 'ssl')"
    code = f"import sys, chainrule.data; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

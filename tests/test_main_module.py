"""`python -m chainrule` is the `chainrule` command."""

import subprocess
import sys

import chainrule


def test_python_m_chainrule_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "chainrule", "--version"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert chainrule.__version__ in out.stdout

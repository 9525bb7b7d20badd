"""benchmarks/bench_engine.py: which library torch's matrix products went through (not timed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_engine.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_engine", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_engine"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_engine", None)


def test_the_matmul_library_is_read_off_the_verbose_logs(bench, capfd) -> None:
    model, x = torch.nn.Linear(64, 64), torch.randn(32, 64)

    def fp32_step() -> None:
        model(x).sum().backward()

    def bf16_step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x).float().sum().backward()

    libs = {"MKL", "oneDNN", "MKL + oneDNN", "neither MKL nor oneDNN (another BLAS)"}
    fp32 = bench.torch_matmul_library(fp32_step)
    assert fp32 in libs
    if torch.backends.mkl.is_available():  # the pinned CPU build: fp32 GEMMs are MKL's
        assert "MKL" in fp32
    assert bench.torch_matmul_library(bf16_step) in libs
    assert bench.torch_matmul_library(lambda: None) == "neither MKL nor oneDNN (another BLAS)"
    assert "verbose" not in capfd.readouterr().out  # the libraries' logs do not leak to the terminal

"""benchmarks/bench_cnn.py: config parsing, the bf16 decision, and a tiny end-to-end run (not timed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cnn.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_cnn", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_cnn"] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_cnn", None)


def test_parse_config(bench) -> None:
    assert bench.parse_config("vgg:32") == ("vgg", {}, 32)
    assert bench.parse_config("fastnet[48-192-192]:512") == ("fastnet", {"widths": (48, 192, 192)}, 512)
    with pytest.raises(SystemExit, match="bad config 'vgg'"):
        bench.parse_config("vgg")


def test_bf16_only_with_native_support(bench) -> None:
    assert bench.bf16_support({"avx2", "fma"})[0] is False
    assert "bf16 skipped" in bench.bf16_support({"avx2", "fma"})[1]
    assert bench.bf16_support({"avx512f", "avx512_bf16"})[0] is True
    assert bench.bf16_support({"amx_tile", "amx_bf16"})[0] is True


def test_tiny_run(bench, capsys) -> None:
    argv = ["--configs", "fastnet-s:2", "--layouts", "fp32", "fp32-cl", "--rounds", "1", "--seconds", "0"]
    assert bench.main(argv + ["--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "CPU: " in out and "fp32 GEMM 2048x2048" in out
    assert "| fastnet-s | 2 | fp32 | 40 |" in out and "| fastnet-s | 2 | fp32-cl | 40 |" in out


def test_unknown_network(bench) -> None:
    with pytest.raises(SystemExit, match="did you mean 'vgg'"):
        bench.main(["--configs", "vgx:2", "--rounds", "1", "--seconds", "0", "--threads", "1"])

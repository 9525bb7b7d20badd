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


def test_the_peak_is_the_fastest_kernel_and_a_step_above_it_is_flagged(bench) -> None:
    rates = {"matmul": (191.0, 95.0), "conv1x1": (318.0, 160.0), "conv3x3": (300.0, 150.0)}
    assert bench.best_kernel(rates) == ("conv1x1", (318.0, 160.0))  # by FLOPs per CPU-second
    assert bench.pct_text(99.6) == "100%"
    assert bench.pct_text(165.0).startswith("165% (above the measured peak")


def test_the_peak_kernels_count_their_flops(bench) -> None:
    import torch

    kernels = bench.peak_kernels(torch.float32)
    assert set(kernels) == {"matmul 2048x2048", "conv1x1 512ch 64x32x32 cl", "conv3x3 256ch 64x16x16 cl"}
    assert kernels["conv1x1 512ch 64x32x32 cl"][1] == 2 * 64 * 32 * 32 * 512 * 512
    assert kernels["conv3x3 256ch 64x16x16 cl"][1] == 2 * 64 * 16 * 16 * 256 * 256 * 9


def test_tiny_run(bench, capsys) -> None:
    argv = ["--configs", "fastnet-s:2", "--layouts", "fp32", "fp32-cl", "--rounds", "1", "--seconds", "0"]
    assert bench.main(argv + ["--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "CPU: " in out and "fp32 matmul 2048x2048" in out and "fp32 conv1x1 512ch" in out
    assert sum("<- the peak" in line for line in out.splitlines()) == 1  # one peak per precision
    assert "| fastnet-s | 2 | fp32 | 40 |" in out and "| fastnet-s | 2 | fp32-cl | 40 |" in out
    # every "% of peak" cell of its own output is within the peak, or says it is not
    cells = [
        line.rstrip(" |").rsplit("| ", 1)[1] for line in out.splitlines() if line.startswith("| fastnet")
    ]
    assert len(cells) == 2
    for cell in cells:
        pct = float(cell.split("%")[0])
        assert pct <= 100 or "above the measured peak" in cell


def test_unknown_network(bench) -> None:
    with pytest.raises(SystemExit, match="did you mean 'vgg'"):
        bench.main(["--configs", "vgx:2", "--rounds", "1", "--seconds", "0", "--threads", "1"])

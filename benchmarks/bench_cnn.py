"""Speed of one CNN training step (PyTorch CPU): the seeds' VGG and the fast network, against the
peak of the matrix-multiply and convolution kernels measured in the same run.

One step = forward, cross-entropy, backward, optimizer update, on a fixed random batch (speed does
not depend on the pixel values):
- `vgg`: `SeedVGG`, Adam lr 1e-4 (the `seed-cnn` recipe), no label smoothing;
- `fastnet*`: `FastNet`, SGD Nesterov momentum 0.85 with the recipe's parameter groups
  (`param_groups`), label smoothing 0.2.

Layouts: `fp32` (NCHW), `fp32-cl` (model and batch in channels-last memory format), and `bf16-cl`
(channels-last under `torch.autocast("cpu", dtype=torch.bfloat16)`) only where the CPU has
AVX512-BF16 or AMX-BF16 (read from /proc/cpuinfo); elsewhere bf16 is skipped with the reason.

GFLOP/s counts a training step as 3x the forward FLOPs of `count_flops` (2 x conv/linear
multiply-adds). The peak is the fastest of three kernels timed in every round, per precision: a
torch matmul of 2048x2048 (MKL in fp32), and two channels-last convolutions through the oneDNN path
the networks' convolutions take (a 1x1 convolution 512 -> 512 channels on 64 x 32 x 32, a 3x3
convolution 256 -> 256 on 64 x 16 x 16). A matmul alone is no bound: on an AMD EPYC (Zen 4) MKL's
fp32 matmul ran at 191 GFLOP/s while oneDNN's convolutions reached 318. A step above the peak is
flagged (the peak then did not bound it). Each measurement records wall time and process CPU time:
"images/s" and "train GFLOP/s" are per wall second (what a user waits for); "% of peak" compares
the step's FLOPs per CPU-second with the peak kernel's FLOPs per CPU-second in the same round (both
sides lose alike when other processes share the cores), then takes the median over rounds. On a
busy machine (load average above the CPU count), multi-threaded steps slow down far more than the
load suggests (each parallel region waits for whichever thread was descheduled): the script warns,
and `--threads 1` gives the robust per-core figures.
Configurations are interleaved (A B C A B C ...) over `--rounds` rounds so that load from other
processes and the VM's fast/slow phases hit all alike; the load average is printed per round.

Usage:
    python benchmarks/bench_cnn.py                         # default: about 2-3 minutes
    python benchmarks/bench_cnn.py --rounds 5 --seconds 6 --threads 2
    python benchmarks/bench_cnn.py --configs vgg:32 fastnet:256 "fastnet[48-192-192]:512" --layouts fp32-cl
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from chainrule.torch_ref import build_cnn, count_flops, param_groups

DEFAULT_CONFIGS = ("vgg:32", "fastnet-s:256", "fastnet-m:256", "fastnet:256")
LAYOUTS = ("fp32", "fp32-cl", "bf16-cl")
GEMM_N = 2048
CONV_PEAKS = ((1, 64, 512, 32), (3, 64, 256, 16))  # (kernel, batch, channels, height = width)
IN_SHAPE = (3, 32, 32)


def cpu_info() -> tuple[str, set[str]]:
    """The CPU model name and flag set from /proc/cpuinfo (empty where it cannot be read)."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or "unknown CPU"
    return model, flags


def bf16_support(flags: set[str]) -> tuple[bool, str]:
    """Whether bf16 autocast has native hardware here, and a one-line reason."""
    have = sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})
    if {"avx512_bf16", "amx_bf16"} & flags:
        return True, f"bf16: native ({', '.join(have)})"
    return False, (
        "bf16 skipped: this CPU has neither avx512_bf16 nor amx_bf16, so bf16 matmuls and "
        "convolutions would be emulated (slower than fp32)"
    )


def parse_config(spec: str) -> tuple[str, dict, int]:
    """'fastnet:512' -> ('fastnet', {}, 512); 'fastnet[48-192-192]:512' -> widths (48, 192, 192)."""
    m = re.fullmatch(r"([a-z0-9-]+)(?:\[([0-9-]+)\])?:([0-9]+)", spec)
    if not m:
        raise SystemExit(
            f"bad config {spec!r}: expected NAME:BATCH or NAME[W1-W2-W3]:BATCH, e.g. fastnet:512"
        )
    name, widths, batch = m.group(1), m.group(2), int(m.group(3))
    opts = {"widths": tuple(int(w) for w in widths.split("-"))} if widths else {}
    return name, opts, batch


@dataclass
class Case:
    """One (network, batch, layout) training step, built once and timed every round."""

    spec: str
    layout: str
    batch: int
    fwd_flops: int
    step: object
    img_s: list[float] = field(default_factory=list)
    img_cpu_s: list[float] = field(default_factory=list)
    pct_peak: list[float] = field(default_factory=list)
    warm: bool = False


def make_case(spec: str, layout: str, seed: int = 0) -> Case:
    name, opts, batch = parse_config(spec)
    try:
        model = build_cnn(name, IN_SHAPE, 10, seed, **opts)
    except ValueError as e:
        raise SystemExit(f"bad config {spec!r}: {e}") from None
    flops = count_flops(model, IN_SHAPE)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *IN_SHAPE, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    channels_last = layout.endswith("-cl")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if name == "vgg":
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        smoothing = 0.0
    else:
        opt = torch.optim.SGD(param_groups(model, lr=0.01, weight_decay=5e-4), momentum=0.85, nesterov=True)
        smoothing = 0.2
    bf16 = layout.startswith("bf16")
    model.train()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y, label_smoothing=smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return Case(spec, layout, batch, flops, step)


def _rate(run: object, flops: float, seconds: float) -> tuple[float, float]:
    """GFLOP per wall second and per process-CPU second of repeated calls of `run` (after one
    warm-up call: thread pool, packing buffers, oneDNN primitive creation)."""
    run()
    reps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while reps < 2 or time.perf_counter() - t0 < seconds:
        run()
        reps += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    work = reps * flops / 1e9
    return work / wall, work / max(cpu, 1e-9)


def peak_kernels(dtype: torch.dtype) -> dict[str, tuple[object, float]]:
    """The candidate peak kernels in `dtype`: name -> (call, FLOPs of one call)."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(GEMM_N, GEMM_N, generator=g).to(dtype) for _ in range(2))
    kernels: dict[str, tuple[object, float]] = {f"matmul {GEMM_N}x{GEMM_N}": (lambda: a @ b, 2 * GEMM_N**3)}
    for k, n, c, hw in CONV_PEAKS:
        x = torch.randn(n, c, hw, hw, generator=g).to(dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(c, c, k, k, generator=g).to(dtype).contiguous(memory_format=torch.channels_last)

        def conv(x=x, w=w, pad=k // 2) -> None:
            with torch.no_grad():
                F.conv2d(x, w, padding=pad)

        kernels[f"conv{k}x{k} {c}ch {n}x{hw}x{hw} cl"] = (conv, 2 * n * hw * hw * c * c * k * k)
    return kernels


def peak_gflops(kernels: dict[str, tuple[object, float]], seconds: float) -> dict[str, tuple[float, float]]:
    """GFLOP per wall second and per CPU-second of each candidate peak kernel (`peak_kernels`)."""
    return {name: _rate(run, flops, seconds) for name, (run, flops) in kernels.items()}


def best_kernel(rates: dict[str, tuple[float, float]]) -> tuple[str, tuple[float, float]]:
    """The peak: the kernel with the most FLOPs per CPU-second."""
    return max(rates.items(), key=lambda kv: kv[1][1])


def pct_text(pct: float) -> str:
    """A "% of peak" cell; above 100% the peak did not bound the step, and the cell says so."""
    return f"{pct:.0f}%" if pct <= 100 else f"{pct:.0f}% (above the measured peak: not a bound)"


def time_case(case: Case, seconds: float, min_steps: int) -> tuple[float, float]:
    """Images per wall second and per process-CPU second of `case.step` (at least `min_steps`
    steps and `seconds` seconds)."""
    if not case.warm:
        case.step()
        case.step()
        case.warm = True
    steps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while steps < min_steps or time.perf_counter() - t0 < seconds:
        case.step()
        steps += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return case.batch * steps / wall, case.batch * steps / cpu


def load_average() -> str:
    try:
        return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "load n/a"


def _runnable_now() -> float:
    """Other runnable tasks right now: the median of five reads of /proc/stat's procs_running (less
    this process) over 0.4 s. The 1-minute load average at start would still count a job that ended
    seconds ago (and warned on a quiet machine); falls back to it off Linux."""
    counts = []
    for _ in range(5):
        try:
            with open("/proc/stat") as f:
                line = next(ln for ln in f if ln.startswith("procs_running"))
            counts.append(int(line.split()[1]) - 1)
        except (OSError, StopIteration, ValueError):
            return os.getloadavg()[0]
        time.sleep(0.1)
    return float(statistics.median(counts))


def _busy(threads: int, load_at_start: float) -> str:
    """A warning when other processes compete for the cores (multi-threaded figures then collapse:
    every parallel region waits for the thread that was descheduled). The load average counts our
    own threads too, so "others" is the load before we started, or the load now minus ours."""
    try:
        others = max(load_at_start, os.getloadavg()[0] - threads)
    except OSError:
        return ""
    if threads > 1 and others > 0.5:
        return (
            f"warning: other processes keep about {others:.1f} CPUs busy: {threads}-thread figures are then "
            "far below what a quiet machine gives; compare with --threads 1 (its images per CPU-second "
            "are robust to load)"
        )
    return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument(
        "--configs",
        nargs="+",
        default=list(DEFAULT_CONFIGS),
        metavar="NAME:BATCH",
        help=f"networks and batch sizes (default: {' '.join(DEFAULT_CONFIGS)})",
    )
    p.add_argument(
        "--layouts",
        nargs="+",
        default=list(LAYOUTS),
        choices=LAYOUTS,
        help="memory layouts / precisions (bf16 only where the CPU supports it)",
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median printed)")
    p.add_argument("--seconds", type=float, default=2.0, help="time per configuration per round")
    p.add_argument("--min-steps", type=int, default=1, help="steps per configuration per round, at least")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.seconds < 0 or args.threads < 1 or args.min_steps < 1:
        raise SystemExit("bench_cnn: --rounds, --threads and --min-steps must be >= 1, --seconds >= 0")
    torch.set_num_threads(args.threads)
    try:
        load_at_start = _runnable_now()
    except OSError:
        load_at_start = 0.0

    model_name, flags = cpu_info()
    shown = sorted(flags & {"avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "avx512_vnni"})
    print(f"CPU: {model_name}, {os.cpu_count()} logical CPUs; flags found: {' '.join(shown) or 'none'}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}; python {sys.version.split()[0]}"
    )
    bf16_ok, why = bf16_support(flags)
    print(why)
    layouts = [lay for lay in args.layouts if bf16_ok or not lay.startswith("bf16")]

    cases = [make_case(spec, lay) for spec in args.configs for lay in layouts]
    # bf16's peak only where a bf16 layout is timed (fp32's always: the baseline the ratios are read against)
    wants_bf16 = any(lay.startswith("bf16") for lay in layouts)
    precisions = {"fp32": torch.float32, **({"bf16": torch.bfloat16} if wants_bf16 else {})}
    peaks: dict[str, list[dict[str, tuple[float, float]]]] = {prec: [] for prec in precisions}
    kernels = {prec: peak_kernels(dtype) for prec, dtype in precisions.items()}  # built once, timed per round
    for r in range(args.rounds):
        round_peak = {}
        for prec in precisions:
            rates = peak_gflops(kernels[prec], min(args.seconds, 1.0))
            peaks[prec].append(rates)
            round_peak[prec] = best_kernel(rates)[1]
        for case in cases:
            ips, ips_cpu = time_case(case, args.seconds, args.min_steps)
            case.img_s.append(ips)
            case.img_cpu_s.append(ips_cpu)
            _, peak_cpu = round_peak["bf16" if case.layout.startswith("bf16") else "fp32"]
            # within the round, per CPU-second on both sides: robust to other processes' load
            case.pct_peak.append(100 * ips_cpu * 3 * case.fwd_flops / 1e9 / peak_cpu)
        print(
            f"round {r + 1}/{args.rounds}: {load_average()}; "
            + ", ".join(f"{c.spec} {c.layout} {c.img_s[-1]:.0f}" for c in cases)
            + " img/s",
            flush=True,
        )

    busy = _busy(args.threads, load_at_start)
    if busy:
        print(busy)
    print()
    for prec, rounds in peaks.items():
        medians = {
            name: (
                statistics.median(r[name][0] for r in rounds),
                statistics.median(r[name][1] for r in rounds),
            )
            for name in rounds[0]
        }
        peak_name = best_kernel(medians)[0]
        for name, (wall, cpu) in medians.items():
            mark = "  <- the peak" if name == peak_name else ""
            print(
                f"{prec} {name}: {wall:.0f} GFLOP/s, {cpu:.0f} GFLOP per CPU-second "
                f"(medians of {len(rounds)} rounds){mark}"
            )
    print()
    print(
        "| network | batch | layout | fwd MFLOP/img | images/s | train GFLOP/s "
        "| images per CPU-s | % of peak (per CPU-s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for c in cases:
        ips = statistics.median(c.img_s)
        print(
            f"| {c.spec.split(':')[0]} | {c.batch} | {c.layout} | {c.fwd_flops / 1e6:.0f} | {ips:.0f} "
            f"| {ips * 3 * c.fwd_flops / 1e9:.1f} | {statistics.median(c.img_cpu_s):.0f} "
            f"| {pct_text(statistics.median(c.pct_peak))} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

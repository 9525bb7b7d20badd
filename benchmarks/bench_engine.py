"""Speed of one full training step of chainrule's NumPy MLP against PyTorch CPU and scikit-learn.

One step = forward, softmax cross-entropy, backward, SGD-momentum update (lr 0.01, momentum 0.9,
PyTorch's convention v <- mu v + g, p <- p - lr v), on a random float32 batch with integer labels.

- ours:    `MLP.forward_nocopy` + `SoftmaxCrossEntropy` + `backward(g, input_grad=False)` +
           `chainrule.optim.SGD` (ReLU hidden layers).
- torch:   the same model in `torch.nn`, float32, `torch.set_num_threads(T)`,
           `zero_grad(set_to_none=True)`, `torch.optim.SGD`.
- sklearn: `MLPClassifier.partial_fit` on the same batch (ReLU, solver="sgd", momentum 0.9,
           nesterovs_momentum=False, batch_size=N, alpha=0, shuffle=False; float32 input is kept
           as float32 by scikit-learn >= 1.2, which the worker checks and reports).

Each measurement runs in its own subprocess (BLAS thread pools limited to T with threadpoolctl),
in the order ours, torch, sklearn, ours, torch, sklearn, ... for `--rounds` rounds, so that the VM's
fast/slow phases hit all three alike; ratios are taken within a round, then the median is reported.

"GEMM bound": in the same process as ours, alternating with the timed steps, the step's own matrix
products alone at the shapes used (forward x @ W.T per layer, grad_W = g.T @ x per layer,
grad_x = g @ W for all layers but the first), with NumPy and `out=` arrays. "% bound" is
t(GEMMs) / t(step): 100% would mean everything besides the matrix products is free.

OpenBLAS environment: the machine's values of OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (mode "as-set")
or both removed from the subprocesses' environment (mode "unset", `--unset-openblas-env`);
`--env both` measures both modes, interleaved round by round. Each worker reports the OpenBLAS core
type that threadpoolctl sees.

Usage:
    python benchmarks/bench_engine.py --quick                     # smoke run, about a minute
    python benchmarks/bench_engine.py --env both --json bench.json
    python benchmarks/bench_engine.py --configs 784-100-10:64 --threads 1 --unset-openblas-env
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

CONFIGS: dict[str, tuple[list[int], int]] = {
    "784-100-10:64": ([784, 100, 10], 64),
    "784-300-10:128": ([784, 300, 10], 128),
    "784-1000-300-10:200": ([784, 1000, 300, 10], 200),
    "3072-1000-800-600-400-10:3000": ([3072, 1000, 800, 600, 400, 10], 3000),
}
# targets of issue 2 (OpenBLAS variables unset, 2 threads): (vs torch, vs sklearn, fraction of GEMM bound)
TARGETS: dict[str, tuple[float, float, float]] = {
    "784-100-10:64": (1.5, 1.3, 0.60),
    "784-300-10:128": (1.5, 1.3, 0.60),
    "784-1000-300-10:200": (1.5, 1.3, 0.85),
    "3072-1000-800-600-400-10:3000": (1.5, 1.3, 0.85),
}
LIBS = ("ours", "torch", "sklearn")
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
LR, MOMENTUM = 0.01, 0.9


def parse_config(spec: str) -> tuple[list[int], int]:
    """'784-100-10:64' -> ([784, 100, 10], 64)."""
    if spec in CONFIGS:
        return CONFIGS[spec]
    try:
        sizes_s, batch_s = spec.split(":")
        sizes = [int(s) for s in sizes_s.split("-")]
        batch = int(batch_s)
    except ValueError:
        raise SystemExit(f"bad config {spec!r}: expected SIZES:BATCH such as 784-100-10:64") from None
    if len(sizes) < 2 or min(sizes) < 1 or batch < 1:
        raise SystemExit(f"bad config {spec!r}: need at least two positive sizes and a positive batch")
    return sizes, batch


# ==================================================================================================
# workers: one library, one configuration, one process


def _data(sizes: list[int], n: int) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, sizes[0]), dtype=np.float32)
    y = rng.integers(0, sizes[-1], n)
    return x, y


def _time_steps(step: Any, seconds: float, min_steps: int) -> tuple[int, float]:
    """Run `step` until `seconds` have passed (at least `min_steps` times); (steps, elapsed)."""
    k, t0 = 0, time.perf_counter()
    while True:
        step()
        k += 1
        elapsed = time.perf_counter() - t0
        if k >= min_steps and elapsed >= seconds:
            return k, elapsed


def _warm(step: Any, seconds: float) -> None:
    """Warm-up (first-call allocations, caches, BLAS threads): at least one step, not timed."""
    _time_steps(step, seconds, 1)


def _blas_info() -> dict[str, Any]:
    from threadpoolctl import threadpool_info

    return {
        "blas": [
            {
                "library": os.path.basename(d.get("filepath", "?")),
                **{k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")},
            }
            for d in threadpool_info()
            if d.get("user_api") == "blas"
        ]
    }


def worker_ours(sizes: list[int], n: int, seconds: float, blocks: int, threads: int) -> dict[str, Any]:
    import numpy as np

    import chainrule.nn as nn
    from chainrule import parallel

    parallel.set_num_threads(threads)  # the optimizer's large in-place updates: as many threads as BLAS
    x, y = _data(sizes, n)
    model = nn.MLP(sizes[0], sizes[1:-1], sizes[-1], activation="relu", seed=0)
    loss_fn = nn.SoftmaxCrossEntropy()
    try:
        from chainrule.optim import SGD

        opt = SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        update = opt.step
        optimizer = "chainrule.optim.SGD"
    except ImportError:  # before the optimizer landed: the same in-place rule, inline
        params = model.parameters()
        bufs = [np.zeros_like(p.data) for p in params]
        tmps = [np.empty_like(p.data) for p in params]

        def update() -> None:
            for p, v, t in zip(params, bufs, tmps, strict=True):
                v *= MOMENTUM
                v += p.grad
                np.multiply(v, LR, out=t)
                p.data -= t

        optimizer = "inline SGD-momentum"

    def step() -> None:
        logits = model.forward_nocopy(x)  # (N, C)
        loss_fn.forward(logits, y)
        model.backward(loss_fn.backward(), input_grad=False)
        update()

    # the step's own matrix products, at the same shapes, on arrays of their own
    rng = np.random.default_rng(1)
    Ws = [rng.standard_normal((o, i), dtype=np.float32) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]
    acts = [rng.standard_normal((n, s), dtype=np.float32) for s in sizes]  # layer inputs/outputs
    grads = [rng.standard_normal((n, s), dtype=np.float32) for s in sizes]  # dL/d(layer output)
    gWs = [np.empty_like(W) for W in Ws]
    outs = [np.empty((n, s), np.float32) for s in sizes]

    def gemms() -> None:
        for i, W in enumerate(Ws):
            np.matmul(acts[i], W.T, out=outs[i + 1])  # (N, in) @ (in, out) -> (N, out)
        for i in range(len(Ws) - 1, -1, -1):
            np.matmul(grads[i + 1].T, acts[i], out=gWs[i])  # (out, N) @ (N, in) -> (out, in)
            if i > 0:
                np.matmul(grads[i + 1], Ws[i], out=outs[i])  # (N, out) @ (out, in) -> (N, in)

    _warm(step, 0.3)
    _warm(gemms, 0.1)
    dtypes = sorted({str(p.data.dtype) for p in model.parameters()} | {str(loss_fn.backward().dtype)})
    step_k = gemm_k = 0
    step_t = gemm_t = 0.0
    for _ in range(blocks):  # alternate, so both see the same machine phases
        k, t = _time_steps(step, seconds / blocks, 1)
        step_k, step_t = step_k + k, step_t + t
        k, t = _time_steps(gemms, seconds / blocks / 2, 1)
        gemm_k, gemm_t = gemm_k + k, gemm_t + t
    return {
        "steps": step_k,
        "seconds": step_t,
        "samples_per_s": step_k * n / step_t,
        "step_ms": 1e3 * step_t / step_k,
        "gemm_ms": 1e3 * gemm_t / gemm_k,
        "gemm_fraction": (gemm_t / gemm_k) / (step_t / step_k),
        "optimizer": optimizer,
        "dtypes": dtypes,
    }


def torch_matmul_library(step: Any) -> str:
    """Which library ran torch's matrix products in one call of `step`: MKL, oneDNN or both, read
    off the libraries' own verbose logs (they write to file descriptor 1, captured here)."""
    import tempfile

    import torch

    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        try:
            with (
                torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON),
                torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON),
            ):
                step()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        text = log.read().decode(errors="replace")
    used = [name for name, mark in (("MKL", "MKL_VERBOSE"), ("oneDNN", "onednn_verbose")) if mark in text]
    return " + ".join(used) or "neither MKL nor oneDNN (another BLAS)"


def worker_torch(sizes: list[int], n: int, seconds: float, threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x_np, y_np = _data(sizes, n)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    _warm(step, 0.5)
    library = torch_matmul_library(step)
    k, t = _time_steps(step, seconds, 2)
    return {
        "torch_matmul_library": library,
        "steps": k,
        "seconds": t,
        "samples_per_s": k * n / t,
        "step_ms": 1e3 * t / k,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "dtypes": sorted({str(p.dtype) for p in model.parameters()}),
    }


def worker_sklearn(sizes: list[int], n: int, seconds: float) -> dict[str, Any]:
    import warnings

    import numpy as np
    import sklearn
    from sklearn.neural_network import MLPClassifier

    x, y = _data(sizes, n)
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(sizes[1:-1]),
        activation="relu",
        solver="sgd",
        learning_rate_init=LR,
        momentum=MOMENTUM,
        nesterovs_momentum=False,
        batch_size=n,
        alpha=0.0,
        shuffle=False,
        random_state=0,
    )
    classes = np.arange(sizes[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(x, y, classes=classes)

        def step() -> None:
            clf.partial_fit(x, y)

        _warm(step, 0.5)
        k, t = _time_steps(step, seconds, 2)
    return {
        "steps": k,
        "seconds": t,
        "samples_per_s": k * n / t,
        "step_ms": 1e3 * t / k,
        "sklearn": sklearn.__version__,
        "dtypes": sorted({str(c.dtype) for c in clf.coefs_}),
    }


def run_worker(args: argparse.Namespace) -> None:
    from threadpoolctl import threadpool_limits

    sizes, n = parse_config(args.config)
    # load every BLAS / OpenMP library first: threadpoolctl limits only the ones already loaded
    import numpy  # noqa: F401

    if args.worker == "torch":
        import torch  # noqa: F401
    elif args.worker == "sklearn":
        import sklearn.neural_network  # noqa: F401
    with threadpool_limits(args.threads):
        info = _blas_info()
        if args.worker == "ours":
            res = worker_ours(sizes, n, args.seconds, args.blocks, args.threads)
        elif args.worker == "torch":
            res = worker_torch(sizes, n, args.seconds, args.threads)
        else:
            res = worker_sklearn(sizes, n, args.seconds)
    res.update(info)
    res["env"] = {k: os.environ.get(k) for k in OPENBLAS_VARS}
    print("RESULT " + json.dumps(res), flush=True)


# ==================================================================================================
# the driver


def _env(mode: str) -> dict[str, str]:
    env = dict(os.environ)
    if mode == "unset":
        for k in OPENBLAS_VARS:
            env.pop(k, None)
    return env


def measure(lib: str, config: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    sizes, n = parse_config(config)
    big = n * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)) > 1e9
    seconds = args.seconds * (3 if big else 1)  # several steps of the 1-second configuration
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        lib,
        "--config",
        config,
        "--threads",
        str(args.threads),
        "--seconds",
        str(seconds),
        "--blocks",
        str(2 if big else args.blocks),
    ]
    try:
        proc = subprocess.run(cmd, env=_env(mode), capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return {"error": f"{lib} worker took over 900 s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return {"error": f"{lib} worker failed (exit {proc.returncode}): " + " | ".join(tail)}
    return json.loads(lines[-1][len("RESULT ") :])


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)} if values else {}


def summarize(records: list[dict[str, Any]], modes: list[str], configs: list[str]) -> list[dict[str, Any]]:
    out = []
    for mode in modes:
        for cfg in configs:
            rows = [r for r in records if r["mode"] == mode and r["config"] == cfg]
            by_round: dict[int, dict[str, dict[str, Any]]] = {}
            for r in rows:
                if "error" not in r["result"]:
                    by_round.setdefault(r["round"], {})[r["lib"]] = r["result"]
            s: dict[str, Any] = {"mode": mode, "config": cfg}
            for lib in LIBS:
                s[lib] = _stats([d[lib]["samples_per_s"] for d in by_round.values() if lib in d])
            for other in ("torch", "sklearn"):
                s[f"ours/{other}"] = _stats(
                    [
                        d["ours"]["samples_per_s"] / d[other]["samples_per_s"]
                        for d in by_round.values()
                        if "ours" in d and other in d
                    ]
                )
            s["gemm_fraction"] = _stats(
                [d["ours"]["gemm_fraction"] for d in by_round.values() if "ours" in d]
            )
            errors = [r["result"]["error"] for r in rows if "error" in r["result"]]
            if errors:
                s["errors"] = errors
            out.append(s)
    return out


def _fmt_rate(st: dict[str, float]) -> str:
    if not st:
        return "-"
    return f"{st['median']:>9,.0f} ({st['min']:,.0f}-{st['max']:,.0f})"


def _fmt_ratio(st: dict[str, float], target: float | None = None, pct: bool = False) -> str:
    if not st:
        return "-"
    med = f"{100 * st['median']:.0f}%" if pct else f"{st['median']:.2f}x"
    lo_hi = f"{100 * st['min']:.0f}-{100 * st['max']:.0f}" if pct else f"{st['min']:.2f}-{st['max']:.2f}"
    mark = "" if target is None else (" ok" if st["median"] >= target else " LOW")
    return f"{med} ({lo_hi}){mark}"


def print_table(summary: list[dict[str, Any]], threads: int) -> None:
    head = (
        f"{'config':<31} {'ours samples/s':>27} {'torch samples/s':>27} {'sklearn samples/s':>27}"
        f"  {'ours/torch':<20} {'ours/sklearn':<21} {'% GEMM bound':<16}"
    )
    mode = None
    for s in summary:
        if s["mode"] != mode:
            mode = s["mode"]
            print(f"\n== OpenBLAS env {mode}, {threads} thread(s); samples/s median (min-max) over rounds ==")
            print(head)
        t = TARGETS.get(s["config"]) if threads == 2 else None
        print(
            f"{s['config']:<31} {_fmt_rate(s['ours']):>27} {_fmt_rate(s['torch']):>27} "
            f"{_fmt_rate(s['sklearn']):>27}  {_fmt_ratio(s['ours/torch'], t and t[0]):<20} "
            f"{_fmt_ratio(s['ours/sklearn'], t and t[1]):<21} "
            f"{_fmt_ratio(s['gemm_fraction'], t and t[2], pct=True):<16}"
        )
        for e in s.get("errors", []):
            print(f"    ! {e}")
    if threads == 2:
        print(
            "\n'ok'/'LOW': median against the issue-2 target (>= 1.5x torch, >= 1.3x sklearn, "
            ">= 60% / 85% of the GEMM bound); the targets are stated for the 'unset' mode."
        )


def write_json(path: str, payload: dict[str, Any]) -> None:
    """Atomic: a temp file in the same folder, then os.replace."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bench-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--configs", default=",".join(CONFIGS), help="comma-separated SIZES:BATCH (default: the four)"
    )
    p.add_argument("--threads", type=int, default=2, help="BLAS / torch threads in every worker (default 2)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5; 2 with --quick)")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="timed seconds per measurement after warm-up (default 2; 0.5 with --quick; x3 for "
        "the large configuration)",
    )
    p.add_argument("--blocks", type=int, default=4, help="alternating step/GEMM blocks in the ours worker")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 0.5 s")
    p.add_argument("--libs", default=",".join(LIBS), help="subset of ours,torch,sklearn")
    p.add_argument(
        "--unset-openblas-env",
        action="store_true",
        help="remove OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from the workers' environment",
    )
    p.add_argument(
        "--env",
        choices=("as-set", "unset", "both"),
        default=None,
        help="OpenBLAS environment mode(s) (default as-set, or unset with --unset-openblas-env)",
    )
    p.add_argument("--json", metavar="PATH", help="also write all measurements and the summary as JSON")
    p.add_argument("--worker", choices=LIBS, help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        run_worker(args)
        return 0

    if args.threads < 1:
        p.error(f"--threads must be >= 1, got {args.threads}")
    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    args.seconds = args.seconds if args.seconds is not None else (0.5 if args.quick else 2.0)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        parse_config(c)
    libs = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
    if not set(libs) <= set(LIBS) or "ours" not in libs:
        p.error(f"--libs must include ours and be a subset of {','.join(LIBS)}, got {args.libs}")
    mode_arg = args.env or ("unset" if args.unset_openblas_env else "as-set")
    modes = ["as-set", "unset"] if mode_arg == "both" else [mode_arg]

    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, threads={args.threads}, rounds={rounds}, "
        f"~{args.seconds:g} s per measurement"
    )
    print("machine OpenBLAS env: " + ", ".join(f"{k}={os.environ.get(k)!r}" for k in OPENBLAS_VARS))
    records: list[dict[str, Any]] = []
    seen_blas: dict[str, set[str]] = {m: set() for m in modes}
    t_start = time.time()
    loads: list[tuple[float, float, float]] = [os.getloadavg()]
    for r in range(rounds):
        for mode in modes:
            for cfg in configs:
                for lib in libs:
                    res = measure(lib, cfg, mode, args)
                    records.append(
                        {
                            "round": r,
                            "mode": mode,
                            "config": cfg,
                            "lib": lib,
                            "time": time.time(),
                            "result": res,
                        }
                    )
                    for b in res.get("blas", []):
                        seen_blas[mode].add(
                            f"{lib}: {b['library']} {b['version']} core={b['architecture']} "
                            f"threads={b['num_threads']}"
                        )
                    if "torch_cpu_capability" in res:
                        seen_blas[mode].add(
                            f"torch: CPU capability {res['torch_cpu_capability']}, matrix products "
                            f"by {res.get('torch_matmul_library', '?')} (their verbose logs)"
                        )
                    if "error" in res:
                        print(f"  round {r + 1} {mode} {cfg} {lib}: {res['error']}", file=sys.stderr)
        load = os.getloadavg()
        loads.append(load)
        print(
            f"  round {r + 1}/{rounds} done ({time.time() - t_start:.0f} s), load average "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other processes on these {os.cpu_count()} CPUs "
            "slow multi-threaded BLAS down many times over)",
            flush=True,
        )

    for mode in modes:
        print(f"\nBLAS seen by threadpoolctl, mode {mode}:")
        for line in sorted(seen_blas[mode]):
            print("  " + line)
    dtypes = sorted({(r["lib"], d) for r in records for d in r["result"].get("dtypes", [])})
    print("dtypes of the trained parameters: " + ", ".join(f"{lib} {d}" for lib, d in dtypes))
    opt = {r["result"]["optimizer"] for r in records if "optimizer" in r["result"]}
    print("ours optimizer: " + ", ".join(sorted(opt)))
    gemm = {}
    for r in records:
        if r["lib"] == "ours" and "gemm_ms" in r["result"]:
            gemm.setdefault((r["mode"], r["config"]), []).append(
                (r["result"]["step_ms"], r["result"]["gemm_ms"])
            )
    print("ours step ms / GEMM-only ms (median over rounds):")
    for (mode, cfg), v in gemm.items():
        print(
            f"  {mode:<7} {cfg:<31} step {statistics.median(a for a, _ in v):9.3f}  "
            f"GEMMs {statistics.median(b for _, b in v):9.3f}"
        )

    summary = summarize(records, modes, configs)
    print_table(summary, args.threads)
    if args.json:
        write_json(
            args.json,
            {
                "threads": args.threads,
                "rounds": rounds,
                "seconds": args.seconds,
                "modes": modes,
                "machine_env": {k: os.environ.get(k) for k in OPENBLAS_VARS},
                "cpus": os.cpu_count(),
                "summary": summary,
                "load_average_per_round": loads,
                "records": records,
            },
        )
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

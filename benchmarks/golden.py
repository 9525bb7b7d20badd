"""Golden numbers: the results a refactor must not change, recorded once and checked bit for bit.

    nice -n 19 python benchmarks/golden.py record   # writes benchmarks/golden.json
    nice -n 19 python benchmarks/golden.py check    # reruns every case, compares with golden.json

Each case is a short `chainrule` command (a few dozen steps; the whole set takes a few minutes on
one thread). What is kept of it: every number of `summary.json`'s `final` metrics, the evaluation
records of `metrics.jsonl` (without wall-clock fields), and a hash of each array of `model.npz`
(its name, dtype, shape and bytes: the zip file itself holds timestamps). `chainrule sweep demo`
keeps that for every trial, `chainrule compare` the numbers of `compare.csv`. Numbers are compared
as their `repr` (bit for bit, NaN equal to NaN).

The numbers are this machine's: another CPU (other BLAS kernels, another thread split) differs at the
rounding level, so record on the machine that checks, from the commit before the change (a `git
worktree` of it), then check the change there. The committed golden.json is the Intel Xeon's of the
sixth session; the eighth session's AMD EPYC differs from it in 7 of 7 cases at ~1e-7, and agreed bit
for bit with its own recording of the commit before its refactors.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

GOLDEN = Path(__file__).with_name("golden.json")

# name -> the arguments of `chainrule` (the run folder / output folder is appended by `_run`). The torch
# cases pin fp32: `--precision auto` times a few steps and takes bf16 where it is faster, which
# depends on the machine and its load (the golden numbers are fp32's).
CASES: dict[str, list[str]] = {
    "mnist-fast": ["train", "--recipe", "mnist-fast", "--steps", "60", "--eval-every", "30"],
    "mnist-fast-torch": [
        "train", "--recipe", "mnist-fast", "--backend", "torch", "--steps", "60", "--precision", "fp32",
    ],
    "mnist-batchnorm": [
        "train", "--recipe", "mnist-fast", "--batch-norm", "--dropout", "0.1", "--steps", "40",
    ],
    "mnist-batchnorm-torch": [
        "train", "--recipe", "mnist-fast", "--batch-norm", "--backend", "torch", "--steps", "40",
        "--precision", "fp32",
    ],
    "cifar10-fastnet": [
        "train", "--recipe", "cifar10-fast", "--model", "fastnet-s", "--steps", "3", "--precision", "fp32",
    ],
    "sweep-demo": ["sweep", "demo", "--workers", "1"],
    "compare": ["compare", "--steps", "20", "--hidden-sizes", "64"],
}  # fmt: skip


def _is_time(key: str) -> bool:
    """Wall-clock fields (`train_time_s`, `wall_s`, `time`, `seconds`) and the case's own temporary
    folder (`out_dir`, `run_dir`): never equal twice."""
    return "time" in key or "wall" in key or key.endswith("_s") or key in ("seconds", "out_dir", "run_dir")


def _numbers(obj: Any) -> Any:
    """`obj` with every float as its repr (bit-exact comparison in JSON) and wall-clock keys dropped."""
    if isinstance(obj, dict):
        return {k: _numbers(v) for k, v in sorted(obj.items()) if not _is_time(k)}
    if isinstance(obj, list):
        return [_numbers(v) for v in obj]
    if isinstance(obj, float):
        return repr(obj)
    return obj


def model_hashes(path: Path) -> dict[str, str]:
    with np.load(path, allow_pickle=False) as z:
        out = {}
        for key in sorted(z.files):
            a = np.ascontiguousarray(z[key])
            h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
            out[key] = h.hexdigest()[:16]
    return out


def run_folder(run_dir: Path) -> dict[str, Any]:
    summary = json.loads((run_dir / "summary.json").read_text())
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    return {
        "status": summary["status"],
        "steps": summary["steps"],
        "final": _numbers(summary["final"]),
        "evals": _numbers(evals),
        "model": model_hashes(run_dir / "model.npz"),
    }


def _run(name: str, args: list[str], out: Path) -> dict[str, Any]:
    target = out / name
    if args[0] == "train":
        cmd = [*args, "--threads", "1", "--quiet", "--run-dir", str(target)]
    elif args[0] == "sweep":
        cmd = [*args, "--out", str(target), "--quiet", "--no-report"]
    else:
        cmd = [*args, "--threads", "1", "--quiet", "--out-dir", str(target)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule.cli", *cmd], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"golden: case {name}: `chainrule {' '.join(cmd)}` failed:\n{proc.stderr}")
    if args[0] == "train":
        return run_folder(target)
    if args[0] == "sweep":
        trials = sorted(p for p in (target / "trials").iterdir() if (p / "summary.json").is_file())
        with open(target / "trials.csv", newline="") as f:
            table = [{k: v for k, v in row.items() if not _is_time(k)} for row in csv.DictReader(f)]
        return {"trials": {p.name: run_folder(p) for p in trials}, "trials.csv": table}
    (folder,) = list(target.iterdir())
    with open(folder / "compare.csv", newline="") as f:
        rows = [{k: v for k, v in row.items() if not _is_time(k)} for row in csv.DictReader(f)]
    summary = json.loads((folder / "summary.json").read_text())
    return {"rows": rows, "summary": _numbers(summary)}


def record_all(names: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chainrule-golden-") as tmp:
        results = {}
        for name in names:
            print(f"golden: {name} ...", file=sys.stderr, flush=True)
            results[name] = _run(name, CASES[name], Path(tmp))
        return results


def _diff(a: Any, b: Any, where: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}/{k}: missing now" for k in a if k not in b]
        out += [f"{where}/{k}: new" for k in b if k not in a]
        for k in a:
            if k in b:
                out += _diff(a[k], b[k], f"{where}/{k}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: golden {a!r}, now {b!r}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("record", "check"))
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="only this case (repeatable)")
    args = ap.parse_args()
    names = args.case or list(CASES)
    commands = {n: "chainrule " + " ".join(CASES[n]) for n in names}
    now = record_all(names)
    if args.mode == "record":
        old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() and args.case else {"cases": {}}
        old["commands"] = {**old.get("commands", {}), **commands}
        old["cases"] = {**old["cases"], **now}
        GOLDEN.write_text(json.dumps(old, indent=1, sort_keys=True) + "\n")
        print(f"golden: recorded {len(names)} cases in {GOLDEN}")
        return 0
    golden = json.loads(GOLDEN.read_text())
    bad = 0
    for name in names:
        diffs = _diff(golden["cases"][name], json.loads(json.dumps(now[name])))
        print(f"golden: {name}: " + ("identical" if not diffs else f"{len(diffs)} differences"))
        for d in diffs[:10]:
            print("   ", d)
        bad += bool(diffs)
    print("golden: all identical" if not bad else f"golden: {bad} cases differ")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

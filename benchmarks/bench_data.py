"""Data benchmark: cold/warm load per data set, and batches/s of the iterator vs the training step.

    python benchmarks/bench_data.py [--root ../shared/datasets] [--only mnist,fashion-mnist,cifar10]

Cold = decode from the source files into an empty temporary cache; warm = a second `load`, served
from that cache (memory-mapped .npy). The iterator is timed over whole epochs of float32
flattened MNIST (60000 x 784); the reference step is forward + backward of a 784-300-10 MLP with
`chainrule.nn` on the same batch size. Targets: warm load < 0.5 s; iterator >= 10x the step.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from chainrule import data, nn

STEP_REPS = 50
DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _time(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_loads(root: Path, names: list[str]) -> dict[str, data.Dataset]:
    print(f"{'data set':<14} {'cold load':>10} {'warm load':>10}  shape")
    loaded = {}
    for name in names:
        cold, ds = _time(lambda name=name: data.load(name, root=root))
        warm, ds = _time(lambda name=name: data.load(name, root=root), repeat=3)
        flag = "" if warm < 0.5 else "  (above the 0.5 s target)"
        print(f"{name:<14} {cold:>9.2f}s {warm:>9.3f}s  {ds.x_train.shape}{flag}")
        loaded[name] = ds
    return loaded


def bench_iterator(x: np.ndarray, y: np.ndarray, batch_sizes: list[int]) -> None:
    print(f"\n{'batch':>5} {'iterator':>14} {'per batch':>10} {'train step':>11} {'ratio':>7}")
    rng = np.random.default_rng(0)
    for b in batch_sizes:
        it = data.BatchIterator(x, y, batch_size=b, seed=0)
        t_epoch, _ = _time(lambda it=it: sum(1 for _ in it), repeat=3)
        per_batch = t_epoch / len(it)
        model = nn.Sequential(nn.Linear(784, 300, rng=0), nn.ReLU(), nn.Linear(300, 10, rng=1))
        loss = nn.SoftmaxCrossEntropy()
        xb = np.ascontiguousarray(x[rng.integers(0, len(x), b)])
        yb = y[: len(xb)]

        def step(model=model, loss=loss, xb=xb, yb=yb) -> None:
            loss(model.forward_nocopy(xb), yb)
            model.backward(loss.backward(), input_grad=False)

        step()
        t_step, _ = _time(lambda step=step: [step() for _ in range(STEP_REPS)], repeat=3)
        t_step /= STEP_REPS
        print(
            f"{b:>5} {1 / per_batch:>10.0f} b/s {per_batch * 1e6:>8.1f}us {t_step * 1e6:>9.1f}us "
            f"{t_step / per_batch:>6.1f}x"
        )


def bench_augment(x: np.ndarray) -> None:
    xb = np.ascontiguousarray(x[:128])
    rng = np.random.default_rng(0)
    t, _ = _time(lambda: [data.random_flip(data.random_crop(xb, 4, rng), rng) for _ in range(20)], repeat=3)
    print(f"\naugmentation (crop 4 + flip) of a 128 x 3 x 32 x 32 float32 batch: {t / 20 * 1e3:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--root", type=Path, default=Path(os.environ.get("CHAINRULE_SHARED_DATASETS", DEFAULT_ROOT))
    )
    ap.add_argument("--only", default="mnist,fashion-mnist,cifar10")
    ap.add_argument("--batch-sizes", default="64,128,200")
    args = ap.parse_args(argv)
    if not args.root.is_dir():
        print(f"no data sets at {args.root}", file=sys.stderr)
        return 1
    names = [n for n in args.only.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="chainrule-bench-cache-") as tmp:
        os.environ["CHAINRULE_CACHE"] = tmp
        print(f"cores: {os.cpu_count()}, root: {args.root}, temporary cache: {tmp}\n")
        loaded = bench_loads(args.root, names)
        src = loaded.get("mnist") or loaded.get("fashion-mnist")
        if src is None:
            src = data.load("mnist", root=args.root)
        (x,), _ = data.standardize(data.flatten(src.x_train))
        bench_iterator(x, src.y_train, [int(b) for b in args.batch_sizes.split(",")])
        if "cifar10" in loaded:
            (xc,), _ = data.standardize(loaded["cifar10"].x_train[:1024])
            bench_augment(xc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

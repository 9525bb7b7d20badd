"""What the trainer's loop costs around the engine's step: `Trainer.fit` time per step on a tiny
MLP (where the loop's own work shows most) and on the MNIST default's 784-512-10, for two source
trees (before / after a change to the loop), alternated so that both see the same machine load.

    nice -n 19 python benchmarks/bench_step_loop.py /path/to/old/src src     # ratios new / old
    nice -n 19 python benchmarks/bench_step_loop.py src                      # one tree: us per step

Each measurement trains in a run folder (so checkpoint and metrics callbacks are active), evaluates
only at the end (on 64 test images), and keeps the best of `--repeats` rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CASES = {  # name -> (hidden sizes, batch size, steps)
    "tiny 784-16-10 batch 16": ([16], 16, 3000),
    "mnist-fast 784-512-10 batch 256": ([512], 256, 300),
}

CHILD = r"""
import json, sys, tempfile, time
import numpy as np
from chainrule.train import TrainConfig, Trainer
from chainrule.train.prepare import RawData, prepare

hidden, batch, steps = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
raw = RawData(rng.integers(0, 256, (4096, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, 4096),
              rng.integers(0, 256, (64, 1, 28, 28), dtype=np.uint8), rng.integers(0, 10, 64),
              [str(i) for i in range(10)])
cfg = TrainConfig(dataset="synthetic", hidden_sizes=hidden, batch_size=batch, steps=steps, epochs=None,
                  val_fraction=0.0, eval_each_epoch=False, eval_every=0, train_eval_size=0, threads=1,
                  schedule="cosine", lr=0.01)
data = prepare(raw, cfg)
with tempfile.TemporaryDirectory() as tmp:
    trainer = Trainer(cfg, data, tmp)
    trainer.fit(until_step=20)  # warm up (first-touch of buffers, BLAS)
    t0 = time.perf_counter()
    trainer.fit()
    print(json.dumps((time.perf_counter() - t0) / (steps - 20)))
"""


def measure(src: str, case: tuple) -> float:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(src), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(case)], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", nargs="+", help="source trees (the folder holding chainrule/)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    for name, case in CASES.items():
        best = {s: float("inf") for s in args.src}
        for _ in range(args.repeats):
            for s in args.src:  # alternated: both trees see the same load
                best[s] = min(best[s], measure(s, case))
        cells = [f"{s}: {1e6 * t:.1f} us/step" for s, t in best.items()]
        if len(args.src) == 2:
            a, b = best.values()
            cells.append(f"ratio {b / a:.3f}")
        print(f"{name}: " + ", ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

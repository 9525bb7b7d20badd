"""Step-by-step comparison of the two engines (`chainrule compare`).

Both engines are built from the same config and seed (so they start from the same weights), run
under the same trainer on the same batches (same permutation, same augmentation draws, same
learning rate at every step), one step at a time; after each step the loss of each engine and
the largest relative difference of any parameter are recorded. Dropout is refused: the two
engines draw their masks from different generators, so the runs would differ by design.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import layout
from chainrule._io import atomic_write_text

from .config import ConfigError, TrainConfig
from .engine import preflight
from .prepare import Prepared, load_raw, prepare
from .run import new_run_dir
from .trainer import Trainer

ENGINES = ("numpy", "torch")


@dataclass
class Comparison:
    """Per-step records of the two engines (arrays of length `steps`)."""

    cfg: TrainConfig
    loss: dict[str, np.ndarray]  # engine -> loss per step
    loss_rel: np.ndarray  # |loss_numpy - loss_torch| / |loss_numpy|
    param_rel: np.ndarray  # max over parameters of max|a - b| / max|a|
    worst_param: list[str]  # the parameter with the largest difference, per step
    seconds: dict[str, float]

    @property
    def steps(self) -> int:
        return int(self.loss_rel.size)

    def summary(self) -> dict[str, Any]:
        i_loss, i_param = int(np.argmax(self.loss_rel)), int(np.argmax(self.param_rel))
        return {
            "steps": self.steps,
            "dtype": self.cfg.dtype,
            "batch_norm_impl": self.cfg.batch_norm_impl,
            "max_loss_rel_diff": float(self.loss_rel.max()),
            "max_loss_rel_diff_step": i_loss + 1,
            "max_param_rel_diff": float(self.param_rel.max()),
            "max_param_rel_diff_step": i_param + 1,
            "max_param_rel_diff_name": self.worst_param[i_param],
            "final_loss": {k: float(v[-1]) for k, v in self.loss.items()},
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["step", "loss_numpy", "loss_torch", "loss_rel_diff", "param_max_rel_diff", "param"])
        for i in range(self.steps):
            w.writerow(
                [
                    i + 1,
                    repr(float(self.loss["numpy"][i])),
                    repr(float(self.loss["torch"][i])),
                    f"{self.loss_rel[i]:.3e}",
                    f"{self.param_rel[i]:.3e}",
                    self.worst_param[i],
                ]
            )
        return buf.getvalue()


def max_relative_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[float, str]:
    """max over arrays k of max|a[k] - b[k]| / max|a[k]| (each array scaled by its own size), and
    that array's name."""
    worst, name = 0.0, ""
    for k, va in a.items():
        if k not in b:
            raise ValueError(f"the torch model has no {k}")
        x = np.asarray(va, np.float64)
        y = np.asarray(b[k], np.float64)
        d = float(np.max(np.abs(x - y))) / max(float(np.max(np.abs(x))), 1e-30) if x.size else 0.0
        if d > worst or not name:
            worst, name = d, k
    return worst, name


def compare_engines(cfg: TrainConfig, steps: int = 100, data: Prepared | None = None) -> Comparison:
    """Train `cfg` for `steps` steps on both engines side by side (see the module docstring)."""
    if cfg.dropout > 0:
        raise ConfigError(
            f"dropout = {cfg.dropout} cannot be compared step by step: NumPy and torch draw different "
            "dropout masks (use --dropout 0)"
        )
    if cfg.model != "mlp":
        raise ConfigError(f"compare builds MLPs on both engines; model = {cfg.model!r} exists only in torch")
    if steps < 1:
        raise ConfigError(f"steps = {steps} is invalid: it must be >= 1")
    # One thread by default: two thread pools (OpenBLAS, torch's OpenMP) taking turns step by step
    # spin against each other and make both 10-100x slower.
    cfg = cfg.replace(
        steps=int(steps),
        epochs=None,
        early_stopping=False,
        device="cpu",
        precision="fp32",
        threads=cfg.threads or 1,
    )
    cfg_np, cfg_t = cfg.replace(backend="numpy", batch_norm_impl="torch"), cfg.replace(backend="torch")
    cfg_np.validate()
    cfg_t.validate()
    preflight(cfg_t)
    if data is None:
        data = prepare(load_raw(cfg), cfg)
    if data.x_train.dtype != np.dtype(cfg.dtype):
        raise ValueError(f"compare: the data are {data.x_train.dtype}, the config says {cfg.dtype}")
    trainers = {"numpy": Trainer(cfg_np, data), "torch": Trainer(cfg_t, data)}
    loss = {k: np.empty(steps) for k in ENGINES}
    loss_rel, param_rel, worst = np.empty(steps), np.empty(steps), []
    seconds = dict.fromkeys(ENGINES, 0.0)
    for s in range(steps):
        for k, tr in trainers.items():
            t0 = time.perf_counter()
            res = tr.fit(until_step=s + 1)
            seconds[k] += time.perf_counter() - t0
            if res.status == "diverged":
                raise RuntimeError(f"compare: the {k} engine diverged at step {s + 1}: {res.message}")
            loss[k][s] = tr.history.loss[s]
        a, b = loss["numpy"][s], loss["torch"][s]
        loss_rel[s] = abs(a - b) / max(abs(a), 1e-30)
        param_rel[s], name = max_relative_difference(
            trainers["numpy"].engine.portable_state(), trainers["torch"].engine.portable_state()
        )
        worst.append(name)
    return Comparison(cfg, loss, loss_rel, param_rel, worst, seconds)


def summary_line(c: Comparison) -> str:
    s = c.summary()
    return (
        f"numpy vs torch, {s['steps']} steps in {s['dtype']}: loss differs by at most "
        f"{s['max_loss_rel_diff']:.2e} (relative, step {s['max_loss_rel_diff_step']}), parameters by at most "
        f"{s['max_param_rel_diff']:.2e} ({s['max_param_rel_diff_name']}, "
        f"step {s['max_param_rel_diff_step']}); "
        f"final loss numpy {s['final_loss']['numpy']:.6f}, torch {s['final_loss']['torch']:.6f}"
    )


def write_comparison(c: Comparison, out_dir: str | Path) -> Path:
    """`<out_dir>/<timestamp>-compare-<name>/` with compare.csv, compare.png and summary.json."""
    from chainrule import report

    folder = new_run_dir(c.cfg.replace(out_dir=str(out_dir), run_dir=None, name=f"compare-{c.cfg.name}"))
    atomic_write_text(folder / layout.COMPARE_CSV, c.csv())
    summary = {**c.summary(), "line": summary_line(c), "config": c.cfg.to_dict()}
    atomic_write_text(folder / layout.SUMMARY, json.dumps(summary, indent=1) + "\n")
    png = report.engine_comparison_plot(
        c.loss["numpy"], c.loss["torch"], c.loss_rel, c.param_rel, title=f"{c.cfg.name}: {c.cfg.dtype}"
    )
    report.save_png(png, folder / layout.COMPARE_PNG)
    return folder

"""The notebook API: `chainrule.fit` trains a run as `chainrule train` does and returns a `Run`;
`chainrule.load_run` opens a run folder as one.

    import chainrule
    run = chainrule.fit(recipe="mnist-fast", epochs=2, quiet=True)   # keys as the train flags
    run.summary["final"]["test_acc"], run.history.to_pandas(), run.predict(images)
    run                                                               # headline numbers and curves
    chainrule.load_run("runs/20261201-120000-mnist").evaluate()
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from chainrule import layout
from chainrule.train.config import ConfigError, TrainConfig, load_toml, resolve
from chainrule.train.history import read_metrics


class History(list):
    """The evaluations of a run, one dict per evaluation (step, epoch, time, lr, losses, accuracies)."""

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per evaluation (pandas is not a chainrule dependency)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("History.to_pandas needs pandas: pip install pandas") from None
        return pd.DataFrame(list(self))


class Run:
    """A run folder: its summary, history and config, and its model to predict and evaluate with.

    Args:
        run_dir: a folder `chainrule train` (or `fit`, or a sweep trial) wrote; it needs `config.toml`.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        if not layout.is_run_folder(self.run_dir):
            raise ConfigError(f"{self.run_dir} is not a chainrule run folder (it has no {layout.CONFIG})")
        self._loaded: Any = None

    def __repr__(self) -> str:
        final = self.summary.get("final") or {}
        acc = final.get("test_acc")
        shown = f", test accuracy {100 * acc:.2f}%" if acc is not None else ""
        return f"Run({str(self.run_dir)!r}: {self.status}{shown})"

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json ({} while the run has not finished)."""
        path = self.run_dir / layout.SUMMARY
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as e:
            raise ConfigError(f"{path} is damaged: {e}") from None

    @property
    def status(self) -> str:
        return self.summary.get("status", "unfinished")

    @property
    def history(self) -> History:
        path = self.run_dir / layout.METRICS
        return History(read_metrics(path) if path.is_file() else [])

    @property
    def config(self) -> TrainConfig:
        return load_toml(self.run_dir / layout.CONFIG)

    def _model(self) -> Any:
        if self._loaded is None:
            from chainrule.train.run import load_run

            self._loaded = load_run(self.run_dir)
        return self._loaded

    def predict_proba(self, x: np.ndarray, backend: str = "numpy") -> np.ndarray:
        """Class probabilities for uint8 images as `chainrule.data.load` gives them.

        Shape: x (N, C, H, W), (N, H, W) or (N, C*H*W) -> (N, num_classes).
        """
        from chainrule.train.run import predict_proba

        return predict_proba(self._model(), x, backend)

    def predict(self, x: np.ndarray, backend: str = "numpy") -> np.ndarray:
        """The predicted class index of each image (see `predict_proba`). Shape: (N,) int64."""
        return self.predict_proba(x, backend).argmax(axis=1)

    def evaluate(self, data_dir: str | None = None, backend: str = "numpy") -> dict[str, Any]:
        """Test loss, accuracy and per-class accuracy of the saved model, as `chainrule evaluate`."""
        from chainrule.train.run import evaluate_run

        return evaluate_run(self.run_dir, data_dir=data_dir, backend=backend)

    def _repr_html_(self) -> str:
        """Jupyter's view: the headline numbers, then the loss and accuracy curves."""
        s = self.summary
        final = s.get("final") or {}

        def pct(v: Any) -> str:
            return "" if v is None else f"{100 * v:.2f}%"

        rows = [
            ("status", s.get("status", "unfinished")),
            ("data set", s.get("dataset")),
            ("model", s.get("model")),
            ("test accuracy", pct(final.get("test_acc"))),
            ("validation accuracy", pct(final.get("val_acc"))),
            ("test loss", None if final.get("test_loss") is None else f"{final['test_loss']:.4f}"),
            ("steps", s.get("steps")),
            ("training time", None if s.get("train_time_s") is None else f"{s['train_time_s']:.1f} s"),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in rows
            if v not in (None, "")
        )
        imgs = "".join(
            f"<img style='max-width:48%' alt='{cap}' src='data:image/png;base64,"
            f"{base64.b64encode(png).decode('ascii')}'>"
            for cap, png in self._curves().items()
        )
        name = html.escape(str(s.get("name", self.run_dir.name)))
        return (
            f"<div><b>chainrule run {name}</b> <code>{html.escape(str(self.run_dir))}</code>"
            f"<table>{body}</table>{imgs}</div>"
        )

    def _curves(self) -> dict[str, bytes]:
        """The run folder's loss and accuracy plots, or (a sweep trial has none) drawn from the history."""
        files = {"loss": self.run_dir / layout.LOSS_PNG, "accuracy": self.run_dir / layout.ACCURACY_PNG}
        if all(p.is_file() for p in files.values()):
            return {cap: p.read_bytes() for cap, p in files.items()}
        evals = self.history
        if not evals:
            return {}
        try:
            from chainrule import report
        except ImportError:
            return {}
        return {
            "loss": report.loss_curves(np.empty(0), 1, evals),
            "accuracy": report.accuracy_curves(evals, final=(self.summary or {}).get("final")),
        }


def _flat(data: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in data.items():  # tables, as in a config file, only group keys
        if isinstance(v, Mapping):
            flat.update(v)
        else:
            flat[k] = v
    return flat


def resolve_fit_config(
    config: TrainConfig | Mapping[str, Any] | str | Path | None = None, **keys: Any
) -> TrainConfig:
    """The config `fit` trains: as `chainrule train`, the defaults, then `recipe=`, then `config` (a
    TOML file or a dict of keys), then the other keys; or a `TrainConfig` with the keys over it."""
    recipe = keys.pop("recipe", None)
    if isinstance(config, TrainConfig):
        if recipe:
            raise ConfigError(
                "fit: give recipe= or a TrainConfig, not both (the TrainConfig is a whole config)"
            )
        return resolve(changes=keys, source="fit", base=config)
    if isinstance(config, Mapping):
        layered = resolve(recipe, changes=_flat(config), source="fit config")
        return resolve(changes=keys, source="fit", base=layered) if keys else layered
    if config is not None and not isinstance(config, str | Path):
        raise ConfigError(
            f"fit: config must be a TrainConfig, a dict or a TOML file, got {type(config).__name__}"
        )
    return resolve(recipe, config, keys, source="fit")


def fit(
    config: TrainConfig | Mapping[str, Any] | str | Path | None = None, quiet: bool = False, **keys: Any
) -> Run:
    """Train a run into a new run folder, as `chainrule train` with the same keys, and return it.

    Args:
        config: a `TrainConfig`, a dict of keys, or a TOML config file (as `--config`).
        quiet: no progress bar.
        keys: any `chainrule train` key (`recipe="mnist-fast"`, `epochs=2`, `hidden_sizes=[100]`).
    """
    from chainrule.train.run import train_run

    cfg = resolve_fit_config(config, **keys)
    return Run(train_run(cfg, quiet=quiet).run_dir)


def load_run(path: str | Path) -> Run:
    """The run in folder `path` (a `chainrule train` run, a `fit` run or a sweep trial)."""
    return Run(path)

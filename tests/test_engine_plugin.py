"""An engine is a plug-in: a class that this file defines and registers by name trains through
`chainrule train` (run folder, report, evaluate) without a change anywhere in the package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chainrule.cli import main
from chainrule.nn import MLP, SoftmaxCrossEntropy
from chainrule.train import ConfigError, TrainConfig
from chainrule.train.engine import TrainingDiverged, engine_class
from chainrule.train.registry import ENGINES, register_engine


class PlainSGDEngine:
    """The smallest engine: a chainrule.nn MLP stepped by hand-written plain SGD (no optimizer
    object), counting its steps. Args: see `chainrule.train.engine.Engine`."""

    backend = "plain-sgd"
    steps_taken = 0

    def __init__(self, cfg: TrainConfig, in_shape: tuple[int, ...], num_classes: int, mean: Any, std: Any,
                 sample: Any = None) -> None:  # fmt: skip
        self.cfg, self.lr = cfg, cfg.lr
        self.model = MLP(in_shape[0], cfg.hidden_sizes, num_classes, activation=cfg.activation, seed=cfg.seed)
        self.loss_fn = SoftmaxCrossEntropy()

    def set_lr(self, lr: float) -> None:
        self.lr = lr

    def get_lr(self) -> float:
        return self.lr

    def train_step(self, x: np.ndarray, y: np.ndarray) -> float:
        loss = self.loss_fn.forward(self.model.forward(x), y)
        if not np.isfinite(loss):
            raise TrainingDiverged("loss is not finite")
        self.model.backward(self.loss_fn.backward())
        for p in self.model.parameters():
            p.data -= self.lr * p.grad
        PlainSGDEngine.steps_taken += 1
        return float(loss)

    def logits(self, x: np.ndarray, final: bool = False) -> np.ndarray:
        self.model.eval()
        try:
            return self.model.forward(x)
        finally:
            self.model.train()

    def check_finite(self) -> None:
        pass

    def penalty_loss(self) -> float | None:
        return None

    def model_state(self) -> dict[str, np.ndarray]:
        return self.model.state_dict()

    def load_model_state(self, state: dict[str, np.ndarray]) -> None:
        self.model.load_state_dict(state)

    def state_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": self.model.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])

    def save_model(self, path: Any) -> None:
        from chainrule.nn.serialization import save

        save(self.model, path)

    def parameter_count(self) -> int:
        return sum(p.data.size for p in self.model.parameters())

    def portable_state(self) -> dict[str, np.ndarray]:
        return self.model.state_dict()

    def describe(self) -> str:
        return "plain-sgd (a test's engine)"


@pytest.fixture
def plain_sgd():
    register_engine("plain-sgd", f"{__name__}:PlainSGDEngine")
    PlainSGDEngine.steps_taken = 0
    yield
    del ENGINES["plain-sgd"]


def test_a_registered_engine_trains_through_chainrule_train(plain_sgd, tmp_path: Path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--backend", "plain-sgd", "--dataset", "synthetic", "--hidden-sizes", "16"]
    rc = main(
        [*argv, "--batch-size", "32", "--epochs", "3", "--lr", "0.05", "--quiet", "--run-dir", str(run)]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["engine"] == "plain-sgd (a test's engine)"
    assert summary["steps"] == PlainSGDEngine.steps_taken == 3 * 17  # 540 training samples, batch 32
    assert summary["final"]["test_acc"] > 0.9  # three classes: it learned
    assert (run / "report.html").is_file() and (run / "model.npz").is_file()
    assert main(["evaluate", str(run)]) == 0  # its model.npz is an ordinary chainrule model


def test_an_unknown_backend_names_the_registered_ones(plain_sgd):
    with pytest.raises(ConfigError, match="not one of numpy, torch, plain-sgd"):
        TrainConfig(backend="plain-sgd2").validate()
    assert engine_class("plain-sgd") is PlainSGDEngine


def test_a_target_that_is_not_module_colon_class_is_refused():
    with pytest.raises(ValueError, match="must be 'module:Class'"):
        register_engine("bad", "tests.engine.PlainSGD")


def test_a_saved_model_is_evaluated_by_the_engine_named(plain_sgd, tmp_path: Path, capsys):
    """`chainrule evaluate --backend NAME` asks the engine (its `saved_logits`): numpy and torch give
    the same accuracy on one saved model; an engine without `saved_logits` is one clear line."""
    run = tmp_path / "run"
    argv = ["train", "--dataset", "synthetic", "--hidden-sizes", "16", "--epochs", "2", "--quiet"]
    assert main([*argv, "--run-dir", str(run)]) == 0
    from chainrule.train.run import evaluate_run

    by_numpy = evaluate_run(run, backend="numpy")
    assert 0.5 < by_numpy["test_acc"] <= 1.0
    pytest.importorskip("torch")
    by_torch = evaluate_run(run, backend="torch")
    assert by_torch["test_acc"] == by_numpy["test_acc"]
    assert by_torch["test_loss"] == pytest.approx(by_numpy["test_loss"], rel=1e-5)
    capsys.readouterr()
    assert main(["evaluate", str(run), "--backend", "plain-sgd"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(
        "the plain-sgd engine cannot evaluate a saved model (--backend numpy evaluates any MLP)"
    )
    assert len(err) == 1

"""End to end on the real MNIST files (CI has ../shared/datasets; skipped cleanly when absent):
loader -> preprocessing -> trainer -> evaluation, one short epoch."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATASETS

from chainrule.train.config import TrainConfig
from chainrule.train.prepare import prepare
from chainrule.train.trainer import Trainer

SHARED = SHARED_DATASETS
pytestmark = [
    pytest.mark.datasets,
    pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason=f"MNIST not found under {SHARED}"),
]


def test_one_epoch_on_real_mnist_learns(tmp_path, monkeypatch):
    from chainrule import data

    monkeypatch.setenv("CHAINRULE_CACHE", str(tmp_path / "cache"))  # never the user's cache
    cfg = TrainConfig(
        dataset="mnist", data_dir=str(SHARED), hidden_sizes=[64], epochs=1.0, seed=0, eval_test=True
    ).validate()
    raw = data.load("mnist", root=SHARED)
    assert raw.x_train.shape == (60000, 1, 28, 28) and raw.x_test.shape == (10000, 1, 28, 28)
    prepared = prepare(raw, cfg)
    trainer = Trainer(cfg, prepared, None)
    res = trainer.fit()
    assert res.status == "completed" and res.step == 211  # ceil(54,001 / 256)
    last = trainer.history.evals[-1]
    assert 0.93 < last["test_acc"] <= 1.0 and 0.93 < last["val_acc"] <= 1.0, last
    # the reported figure is the model's: evaluating again gives the same number
    _, acc = trainer.evaluate(prepared.x_test, prepared.y_test)
    assert acc == pytest.approx(last["test_acc"])

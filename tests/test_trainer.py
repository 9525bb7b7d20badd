"""The trainer on a tiny synthetic data set: determinism, resume, divergence, early stopping,
history, checkpoints, data preparation and augmentation."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pytest

from chainrule.data.batching import epoch_permutation
from chainrule.train import (
    CheckpointError,
    ConfigError,
    EarlyStopping,
    History,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    load_checkpoint,
    prepare,
    read_metrics,
    resolve_data_root,
    save_checkpoint,
    synthetic,
)
from chainrule.train.trainer import augment_batch


def small_cfg(**kw) -> TrainConfig:
    base = dict(
        dataset="synthetic",
        hidden_sizes=[16],
        epochs=3.0,
        batch_size=32,
        seed=3,
        train_eval_size=200,
        # pinned here so the tests do not move with the main command's defaults
        optimizer="adam",
        lr=1e-3,
        momentum=0.0,
    )
    base.update(kw)
    return TrainConfig(**base).validate()


def data_for(cfg: TrainConfig):
    return prepare(synthetic(), cfg)


def strip_time(evals):
    return [{k: v for k, v in e.items() if k != "time"} for e in evals]


def fit(cfg: TrainConfig, run_dir=None, until=None):
    tr = Trainer(cfg, data_for(cfg), run_dir)
    res = tr.fit(until_step=until)
    return tr, res


# ---- determinism and resume ---------------------------------------------------------------------
def test_same_seed_gives_bit_identical_metrics_and_weights():
    cfg = small_cfg(dropout=0.2, eval_every=7)
    a, ra = fit(cfg)
    b, rb = fit(cfg)
    assert ra.status == rb.status == "completed"
    assert strip_time(a.history.evals) == strip_time(b.history.evals)
    assert np.array_equal(a.history.loss[: a.step], b.history.loss[: b.step])
    for (na, pa), (nb, pb) in zip(a.model.named_parameters(), b.model.named_parameters(), strict=True):
        assert na == nb and np.array_equal(pa.data, pb.data)
    c, _ = fit(small_cfg(dropout=0.2, eval_every=7, seed=4))
    assert not np.array_equal(a.history.loss[: a.step], c.history.loss[: c.step])  # the seed matters


@pytest.mark.parametrize(
    "kw",
    [
        dict(optimizer="adam", dropout=0.2, schedule="cosine", eval_every=5),
        dict(
            optimizer="sgd",
            lr=0.05,
            momentum=0.9,
            schedule="loss_ratio",
            lr_window=4,
            random_crop=True,
            random_flip=True,
            alternate_flip=True,
            crop_padding=1,
            l2=1e-3,
            batch_norm=True,
        ),
        dict(
            optimizer="rmsprop",
            lr=1e-3,
            schedule="plateau",
            decay_rate=0.5,
            plateau_patience=1,
            early_stopping=True,
            patience=50,
            eval_every=3,
        ),
    ],
)
def test_resume_from_mid_epoch_checkpoint_matches_uninterrupted_run(tmp_path, kw):
    cfg = small_cfg(**kw)
    full, rfull = fit(cfg, tmp_path / "full")
    assert rfull.status in ("completed", "early_stopped")
    (tmp_path / "part").mkdir()
    part, rpart = fit(cfg, tmp_path / "part", until=23)  # 23 is not an evaluation point
    assert rpart.status == "paused" and part.step == 23
    resumed = Trainer(cfg, data_for(cfg), tmp_path / "part")
    resumed.resume()
    assert resumed.step == 23
    rres = resumed.fit()
    assert rres.status == rfull.status
    assert strip_time(resumed.history.evals) == strip_time(full.history.evals)
    assert np.array_equal(resumed.history.loss[: resumed.step], full.history.loss[: full.step])
    assert np.array_equal(resumed.history.lr[: resumed.step], full.history.lr[: full.step])
    for (_, pa), (_, pb) in zip(resumed.model.named_parameters(), full.model.named_parameters(), strict=True):
        assert np.array_equal(pa.data, pb.data)


def test_a_stop_request_checkpoints_the_current_step_and_resumes_bit_identically(tmp_path, monkeypatch):
    import chainrule.train.trainer as trainer_mod

    cfg = small_cfg(dropout=0.1, eval_every=7, schedule="cosine")
    full, rfull = fit(cfg, tmp_path / "full")
    tr = Trainer(cfg, data_for(cfg), tmp_path / "part")
    monkeypatch.setattr(trainer_mod, "stop_requested", lambda: tr.step >= 30)  # 30: mid-epoch, no eval
    res = tr.fit()
    assert res.status == "interrupted" and res.step == 30
    assert res.message == "interrupted at step 30; checkpoint saved"
    assert tr.last_checkpoint_step == 30
    assert load_checkpoint(tmp_path / "part" / "checkpoint.npz")["step"] == 30
    monkeypatch.undo()
    resumed = Trainer(cfg, data_for(cfg), tmp_path / "part")
    resumed.resume()
    assert resumed.step == 30
    assert resumed.fit().status == rfull.status
    assert strip_time(resumed.history.evals) == strip_time(full.history.evals)
    assert np.array_equal(resumed.history.loss[: resumed.step], full.history.loss[: full.step])
    for (_, pa), (_, pb) in zip(resumed.model.named_parameters(), full.model.named_parameters(), strict=True):
        assert np.array_equal(pa.data, pb.data)


# ---- divergence ------------------------------------------------------------------------------------
def test_nan_stops_with_clear_message_and_keeps_a_valid_checkpoint(tmp_path):
    cfg = small_cfg(optimizer="sgd", lr=1e12, schedule="constant", epochs=5.0)
    tr, res = fit(cfg, tmp_path)
    assert res.status == "diverged"
    assert "diverged at step" in res.message and "last good checkpoint" in res.message
    assert "--lr" in res.message
    assert res.step < tr.total_steps
    state = load_checkpoint(tmp_path / "checkpoint.npz")
    assert all(np.isfinite(v).all() for v in state["engine"]["model"].values())
    # the model was reset to the last good state
    for name, p in tr.model.named_parameters():
        assert np.isfinite(p.data).all(), name


def test_nonfinite_gradient_is_caught_at_evaluation(tmp_path):
    cfg = small_cfg(epochs=1.0)
    tr = Trainer(cfg, data_for(cfg), tmp_path)
    tr.model.parameters()[0].grad[0, 0] = np.inf
    with pytest.raises(TrainingDiverged, match="gradient of .* NaN/Inf"):
        tr.engine.check_finite()


# ---- early stopping --------------------------------------------------------------------------------
def test_early_stopping_stops_and_restores_best_weights():
    cfg = small_cfg(early_stopping=True, patience=2, min_delta=0.5, eval_every=2, epochs=10.0)
    tr, res = fit(cfg)
    assert res.status == "early_stopped"
    assert "early stop" in res.message
    assert tr.step < tr.total_steps
    assert len(tr.history.evals) == 3  # first eval sets the anchor, then 2 without a 50% gain
    losses = [e["val_loss"] for e in tr.history.evals]
    assert tr.stopper.best == min(losses)
    # the weights are judged by their own validation loss, not by the trainer's snapshot
    assert tr.evaluate(tr.data.x_val, tr.data.y_val)[0] == min(losses)


def test_early_stopping_restores_the_weights_of_the_best_evaluation_not_the_last():
    """With 40% of the training labels replaced by random ones the validation loss falls, then
    rises as the net memorizes the noise: the run stops after the best evaluation, and the model
    it leaves must score that evaluation's validation loss when evaluated again."""
    cfg = small_cfg(
        early_stopping=True, patience=2, min_delta=0.0, eval_every=2, epochs=30.0, lr=1e-2, hidden_sizes=[64]
    )
    raw = synthetic(n_train=300)
    rng = np.random.default_rng(0)
    y = raw.y_train.copy()
    noisy = rng.random(y.size) < 0.4
    y[noisy] = rng.integers(0, 3, int(noisy.sum()))
    tr = Trainer(cfg, prepare(dataclasses.replace(raw, y_train=y), cfg))
    res = tr.fit()
    assert res.status == "early_stopped"
    losses = [e["val_loss"] for e in tr.history.evals]
    best = int(np.argmin(losses))
    assert best < len(losses) - 1 and losses[-1] > losses[best]  # restoring is not a no-op here
    assert res.best_step == tr.history.evals[best]["step"]
    assert tr.evaluate(tr.data.x_val, tr.data.y_val)[0] == losses[best]


def test_early_stopping_rule():
    es = EarlyStopping(patience=2, min_delta=0.01, mode="min")
    assert es.update(1.0, 1) and not es.should_stop
    assert es.update(0.995, 2)  # better (best moves) but < 1% gain: counts as stale
    assert es.bad_evals == 1
    assert es.update(0.98, 3)  # 2% below the anchor 1.0: significant
    assert es.bad_evals == 0
    assert not es.update(0.99, 4) and not es.should_stop
    assert not es.update(0.985, 5) and es.should_stop
    assert es.best == 0.98 and es.best_step == 3
    acc = EarlyStopping(patience=1, min_delta=0.001, mode="max")
    acc.update(0.9, 1)
    acc.update(0.9005, 2)
    assert acc.should_stop
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")


# ---- history -----------------------------------------------------------------------------------------
def test_history_window_means_and_files(tmp_path):
    h = History(10, window=3)
    h.loss[:7] = np.arange(7, dtype=float)
    h.lr[:7] = 0.1
    h.steps = 7
    ends, means = h.windowed()
    assert ends.tolist() == [3, 6] and means.tolist() == [1.0, 4.0]
    h.add_eval({"step": 7, "epoch": 1.0, "time": 0.5, "lr": 0.1, "test_loss": float("nan"), "test_acc": 0.5})
    h.write(tmp_path)
    rows = (tmp_path / "steps.csv").read_text().splitlines()
    assert rows[0] == "step,loss,lr,loss_window_3" and len(rows) == 8
    assert rows[3] == "3,2.0,0.1,1.0" and rows[4] == "4,3.0,0.1,"
    assert '"test_loss": null' in (tmp_path / "metrics.jsonl").read_text()
    h.ensure(100)
    assert h.loss.size >= 100 and h.loss[6] == 6.0


# ---- checkpoints -------------------------------------------------------------------------------------
def test_checkpoint_roundtrip_and_damage(tmp_path):
    gen = np.random.default_rng(5)
    state = {
        "a": np.arange(6.0).reshape(2, 3),
        "n": {1: "x", "k": (1, 2.5, None)},
        "rng": gen.bit_generator.state,
        "lst": [np.float32(1.5), np.zeros(2, np.int64)],
    }
    p = save_checkpoint(tmp_path / "c.npz", state)
    back = load_checkpoint(p)
    assert np.array_equal(back["a"], state["a"])
    assert back["n"] == {1: "x", "k": (1, 2.5, None)}
    assert back["rng"] == state["rng"]
    assert back["lst"][0] == 1.5 and back["lst"][1].dtype == np.int64
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(p)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")


# ---- data preparation --------------------------------------------------------------------------------
def test_prepare_split_and_standardization():
    raw = synthetic()
    cfg = small_cfg(val_fraction=0.2)
    d = prepare(raw, cfg)
    assert d.x_train.dtype == np.float32 and d.x_train.shape[1] == 64 and d.x_train.flags.c_contiguous
    assert d.y_val is not None and d.y_val.size + d.y_train.size == raw.y_train.size
    for c in range(3):  # stratified: each class keeps its share
        frac = np.mean(d.y_val == c) / np.mean(raw.y_train == c)
        assert abs(frac - 1.0) < 0.15
    assert abs(float(d.x_train.mean())) < 1e-3 and abs(float(d.x_train.std()) - 1.0) < 1e-3
    scaled = prepare(raw, small_cfg(preprocess="scale", val_fraction=0.0))
    assert scaled.x_val is None and np.allclose(
        scaled.x_train * 255.0, raw.x_train.reshape(600, -1), atol=1e-3
    )
    uva = prepare(raw, small_cfg(preprocess="center255", val_fraction=0.0, dtype="float64"))
    assert uva.x_train.dtype == np.float64
    assert np.allclose(uva.x_train, raw.x_train.reshape(600, -1) - raw.x_train.mean(), atol=1e-6)


def test_data_root_search_order(tmp_path, monkeypatch):
    work = tmp_path / "repo"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("CHAINRULE_DATA", raising=False)
    assert resolve_data_root(None) is None
    shared = tmp_path / "shared" / "datasets"
    shared.mkdir(parents=True)
    assert Path(resolve_data_root(None)) == shared.resolve()
    monkeypatch.setenv("CHAINRULE_DATA", "/env/data")
    assert resolve_data_root(None) == "/env/data"
    given = tmp_path / "given"
    given.mkdir()
    assert resolve_data_root(str(given)) == str(given)  # a named folder must exist: test_rough_edges.py


def test_augment_batch_flip_and_crop():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 2 * 4 * 5)).astype(np.float32)
    img = x.reshape(50, 2, 4, 5)
    out = augment_batch(x, (2, 4, 5), True, 0, np.random.default_rng(1)).reshape(50, 2, 4, 5)
    flipped = np.array([np.array_equal(o, i[..., ::-1]) for o, i in zip(out, img, strict=True)])
    same = np.array([np.array_equal(o, i) for o, i in zip(out, img, strict=True)])
    assert np.all(flipped | same) and 10 < flipped.sum() < 40
    crop = augment_batch(x, (2, 4, 5), False, 1, np.random.default_rng(2)).reshape(50, 2, 4, 5)
    assert crop.shape == img.shape and crop.dtype == np.float32
    for o, i in zip(crop, img, strict=True):  # each crop is a shift by at most 1 pixel, zero-filled
        ok = False
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                pad = np.zeros((2, 6, 7), np.float32)
                pad[:, 1:5, 1:6] = i
                ok |= np.array_equal(o, pad[:, 1 + dy : 5 + dy, 1 + dx : 6 + dx])
        assert ok
    mirrored = augment_batch(x, (2, 4, 5), False, 1, np.random.default_rng(2), crop_mode="reflect").reshape(
        50, 2, 4, 5
    )
    for o, i in zip(mirrored, img, strict=True):  # the same shifts, edges mirrored instead of zeros
        pad = np.pad(i, ((0, 0), (1, 1), (1, 1)), mode="reflect")
        assert any(
            np.array_equal(o, pad[:, 1 + dy : 5 + dy, 1 + dx : 6 + dx])
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        )


def test_reflect_crop_trains_and_a_padding_too_large_is_refused():
    cfg = small_cfg(random_crop=True, crop_padding=2, crop_fill="reflect", epochs=1.0)
    tr = Trainer(cfg, data_for(cfg))
    tr.fit()
    assert np.isfinite(tr.history.loss[: tr.step]).all()
    side = min(tr.data.image_shape[1:])
    bad = small_cfg(random_crop=True, crop_padding=side, crop_fill="reflect")
    with pytest.raises(ConfigError, match=f"needs images larger than {side}x{side}"):
        Trainer(bad, data_for(bad))


def test_alternating_flip_shows_each_image_both_ways_in_two_epochs():
    cfg = small_cfg(random_flip=True, alternate_flip=True, batch_size=600, epochs=4.0, train_eval_size=0)
    tr = Trainer(cfg, data_for(cfg))
    seen: list[np.ndarray] = []
    train_step = tr.engine.train_step
    tr.engine.train_step = lambda xb, yb: (seen.append(xb.copy()), train_step(xb, yb))[1]
    tr.fit()
    x = tr.data.x_train.reshape(-1, *tr.data.image_shape)
    flips = []
    for epoch, xb in enumerate(seen):  # one step per epoch: the batch is the epoch's permutation
        perm = epoch_permutation(cfg.seed, epoch, tr.n_train)
        img = xb.reshape(-1, *tr.data.image_shape)
        flipped = np.array([np.array_equal(img[j], x[i, :, :, ::-1]) for j, i in enumerate(perm)])
        assert all(flipped[j] or np.array_equal(img[j], x[i]) for j, i in enumerate(perm))
        flips.append(np.empty_like(flipped))
        flips[-1][perm] = flipped  # by image
    assert len(flips) == 4 and 200 < flips[0].sum() < 400
    np.testing.assert_array_equal(flips[1], ~flips[0])
    np.testing.assert_array_equal(flips[2], flips[0])
    np.testing.assert_array_equal(flips[3], ~flips[0])


def test_drop_last_trains_on_full_batches_only():
    cfg = small_cfg(batch_size=64, drop_last=True, epochs=2.0)  # 540 training samples: 8 batches, 28 left
    tr = Trainer(cfg, data_for(cfg))
    sizes: list[int] = []
    train_step = tr.engine.train_step
    tr.engine.train_step = lambda xb, yb: (sizes.append(len(yb)), train_step(xb, yb))[1]
    assert tr.fit().status == "completed"
    assert tr.steps_per_epoch == 8 and sizes == [64] * 16
    assert Trainer(small_cfg(batch_size=64), data_for(cfg)).steps_per_epoch == 9  # the default keeps it


def test_a_last_batch_of_one_sample_under_batch_norm_is_refused_before_training():
    cfg = small_cfg(batch_norm=True, batch_size=539)  # 540 training samples
    with pytest.raises(
        ConfigError, match=r"batch_size = 539 leaves a last batch of 1 of the 540 .*drop-last"
    ):
        Trainer(cfg, data_for(cfg))
    assert fit(small_cfg(batch_size=539))[1].status == "completed"  # no batch norm: one sample is fine
    assert fit(small_cfg(batch_norm=True, batch_size=539, drop_last=True))[1].status == "completed"
    with pytest.raises(ConfigError, match="fewer than one batch of 1000"):
        Trainer(small_cfg(batch_size=1000, drop_last=True), data_for(cfg))


def test_no_eval_each_epoch_evaluates_only_every_eval_every_steps_and_at_the_end(tmp_path):
    # 540 training samples, batch 32: 17 steps an epoch, 51 in all
    cfg = small_cfg(eval_every=20, eval_each_epoch=False)
    tr, res = fit(cfg, tmp_path / "run")
    assert res.status == "completed"
    assert [e["step"] for e in tr.history.evals] == [20, 40, 51]
    tr2, _ = fit(small_cfg(eval_every=20))  # the default adds the epoch ends
    assert [e["step"] for e in tr2.history.evals] == [17, 20, 34, 40, 51]
    np.testing.assert_array_equal(tr.history.loss, tr2.history.loss)  # evaluating changes no step
    assert [tr.evaluates_after(s) for s in range(1, 52)].count(True) == 3
    # fit leaves metrics.jsonl complete however often it rewrote it during the run
    assert [e["step"] for e in read_metrics(tmp_path / "run" / "metrics.jsonl")] == [20, 40, 51]
    with pytest.raises(ConfigError, match="eval_each_epoch = False is invalid: .*early stopping"):
        small_cfg(eval_each_epoch=False, early_stopping=True, val_fraction=0.1)


def test_trainer_learns_the_synthetic_task():
    tr, res = fit(small_cfg(epochs=4.0, eval_test=True))
    last = tr.history.evals[-1]
    assert res.status == "completed" and tr.step == tr.total_steps == 4 * math.ceil(540 / 32)
    assert last["test_acc"] > 0.9 and last["train_loss"] < tr.history.evals[0]["train_loss"]
    assert [e["step"] for e in tr.history.evals] == [17, 34, 51, 68]


def test_the_test_set_is_left_to_the_end_by_default_and_eval_test_changes_nothing_else(tmp_path):
    from chainrule.train import train_run

    assert TrainConfig().eval_test is False  # validation during training: no tuning on the test set
    tr_a, _ = fit(small_cfg(eval_test=True))
    tr_b, _ = fit(small_cfg())
    a, b = strip_time(tr_a.history.evals), strip_time(tr_b.history.evals)
    assert all(e["test_acc"] is None and e["test_loss"] is None for e in b)
    assert [{k: v for k, v in e.items() if not k.startswith("test_")} for e in a] == [
        {k: v for k, v in e.items() if not k.startswith("test_")} for e in b
    ]
    res = train_run(small_cfg(run_dir=str(tmp_path / "r")), quiet=True, plots=False)
    assert res.summary["final"]["test_acc"] == pytest.approx(a[-1]["test_acc"])
    assert not (tmp_path / "r" / "report.html").exists() and (tmp_path / "r" / "model.npz").is_file()


def test_no_validation_and_no_train_evaluation_still_completes():
    """Evaluation points then measure only the test set: nothing is monitored, nothing diverges."""
    cfg = small_cfg(val_fraction=0.0, train_eval_size=0, eval_test=True)
    tr, res = fit(cfg)
    assert res.status == "completed" and tr.history.evals[-1]["test_acc"] > 0.5

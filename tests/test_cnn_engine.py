"""Image models (the seeds' VGG and FastNet) under the one trainer on the torch engine: they learn on
tiny synthetic images, resume bit-identically, write a normal run folder (torch model file,
time-to-accuracy plot) that `evaluate` and `predict` read, and bad combinations are one line;
`--optimizer muon` and `--micro-batch` (the optimizer itself: tests/test_muon.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from chainrule.cli import main  # noqa: E402
from chainrule.train import TrainConfig, Trainer, prepare, synthetic, train_run  # noqa: E402
from chainrule.train.config import ConfigError  # noqa: E402
from chainrule.train.run import evaluate_run  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = dict(
    model="fastnet",
    widths=[8, 16, 16],
    optimizer="sgd",
    lr=0.2,
    momentum=0.85,
    nesterov=True,
    weight_decay=5e-4,
    bias_lr_scale=16.0,
    label_smoothing=0.2,
    schedule="triangle",
    warmup_steps=4,
    warmup_start=0.2,
    min_lr=0.01,
    random_flip=True,
    random_crop=True,
    crop_padding=2,
    lookahead=True,
    tta=2,
)


def cfg_of(**kw) -> TrainConfig:
    base = dict(dataset="synthetic", backend="torch", batch_size=16, epochs=3.0, threads=1, seed=2)
    base.update(kw)
    return TrainConfig(**base).validate()


@pytest.fixture(scope="module")
def raw32():
    return synthetic(n_train=64, n_test=32, size=32, seed=5)


@pytest.mark.parametrize(
    "extra",
    [
        dict(model="vgg", optimizer="adam", lr=1e-3, eval_batch_size=64),
        # the whole fast recipe, with a larger lr and no label smoothing (the loss floor it sets)
        {**FAST, "label_smoothing": 0.0, "epochs": 6.0, "lr": 1.0, "min_lr": 0.05},
    ],
    ids=["vgg", "fastnet"],
)
def test_cnn_learns_on_tiny_images_with_falling_loss(raw32, extra):
    cfg = cfg_of(**extra)
    data = prepare(raw32, cfg)
    assert data.x_train.dtype == np.uint8 and data.x_train.ndim == 4  # images stay uint8
    tr = Trainer(cfg, data)
    res = tr.fit()
    assert res.status == "completed"
    loss = tr.history.loss[: tr.step]
    assert loss[-3:].mean() < 0.8 * loss[:3].mean(), loss


def test_fastnet_resume_is_bit_identical(tmp_path, raw32):
    cfg = cfg_of(**FAST)
    full = Trainer(cfg, prepare(raw32, cfg), tmp_path / "full")
    full.fit()
    part = Trainer(cfg, prepare(raw32, cfg), tmp_path / "split")
    assert part.fit(until_step=7).status == "paused"
    resumed = Trainer(cfg, prepare(raw32, cfg), tmp_path / "split")
    resumed.resume()
    assert resumed.fit().status == "completed"
    np.testing.assert_array_equal(full.history.loss, resumed.history.loss)
    a, b = full.engine.model_state(), resumed.engine.model_state()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_same_seed_same_fastnet(raw32):
    cfg = cfg_of(**FAST, epochs=1.0)
    runs = [Trainer(cfg, prepare(raw32, cfg)) for _ in range(2)]
    for tr in runs:
        tr.fit()
    np.testing.assert_array_equal(runs[0].history.loss, runs[1].history.loss)


def test_cnn_run_folder_evaluate_and_predict(tmp_path, capsys):
    cfg = cfg_of(**{**FAST, "widths": [8, 16]}, run_dir=str(tmp_path / "run"))
    run = train_run(cfg, quiet=True)
    files = {p.name for p in run.run_dir.iterdir()}
    assert {"model.npz", "time_to_accuracy.png", "report.html", "predictions.png"} <= files
    assert run.summary["model"].startswith("fastnet")
    res = evaluate_run(run.run_dir, backend="torch")
    assert res["test_acc"] == run.summary["final"]["test_acc"]
    rc = main(["evaluate", str(run.run_dir)])
    err = capsys.readouterr().err
    assert rc == 2 and "--backend torch" in err and len(err.strip().splitlines()) == 1
    from PIL import Image

    img = tmp_path / "x.png"
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(img)
    assert main(["predict", str(run.run_dir), str(img), "--backend", "torch", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["class"].startswith("class")


TINY = ["train", "--dataset", "synthetic", "--quiet", "--threads", "1", "--epochs", "1"]


@pytest.mark.parametrize(
    "flags,expect",
    [
        (["--model", "vgg"], "needs --backend torch"),
        (["--backend", "torch", "--model", "vgg"], "vgg: images of 8x8"),
        (["--backend", "torch", "--model", "resnet"], "invalid choice"),
        (["--widths", "8", "16"], "used only with fastnet"),
        (["--backend", "torch", "--tta", "1"], "image model"),
        (["--backend", "torch", "--model", "fastnet", "--dtype", "float64"], "float32"),
        (["--label-smoothing", "0.1"], "needs --backend torch"),
        (["--backend", "torch", "--lookahead", "--lookahead-every", "0"], "lookahead_every"),
        (["--random-crop", "--crop-padding", "8", "--crop-fill", "reflect"], "larger than 8x8"),
        (["--random-crop", "--crop-fill", "mirror"], "crop-fill"),
    ],
)
def test_bad_cnn_flags_are_one_line(tmp_path, capsys, flags, expect):
    rc = main([*TINY, "--out-dir", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and expect in err, err


def test_a_lookahead_run_ends_on_the_slow_weights(raw32):
    cfg = cfg_of(**{**FAST, "widths": [8, 16]}, epochs=1.3)  # a step count that is not a multiple of 5
    tr = Trainer(cfg, prepare(raw32, cfg))
    tr.fit()
    assert tr.step % 5 != 0
    state = tr.model.state_dict()
    for k, slow in tr.engine.lookahead.slow.items():
        assert torch.equal(state[k], slow), k


@pytest.mark.parametrize("every", [1, 3])
def test_lookahead_every_sets_when_the_slow_weights_move(raw32, every):
    cfg = cfg_of(**{**FAST, "widths": [8, 16]}, lookahead_every=every, steps=20)
    tr = Trainer(cfg, prepare(raw32, cfg))
    engine = tr.engine
    engine.total_steps = 20
    x, y = tr.data.x_train[:16], tr.data.y_train[:16]
    moved = []
    for _ in range(7):
        before = {k: v.clone() for k, v in engine.lookahead.slow.items()}
        engine.train_step(x, y)
        moved.append(any(not torch.equal(before[k], v) for k, v in engine.lookahead.slow.items()))
    assert moved == [(s + 1) % every == 0 for s in range(7)]


# ---- --optimizer muon and --micro-batch ----------------------------------------------------------
MUON = dict(
    model="fastnet",
    widths=[8, 16],
    optimizer="muon",
    lr=0.5,
    momentum=0.85,
    nesterov=True,
    bias_lr_scale=0.1,
    muon_lr=0.05,
    muon_momentum=0.6,
    muon_ns_steps=3,
    muon_normalize=True,
    schedule="triangle",
    warmup_start=1.0,
    min_lr=0.0,
    label_smoothing=0.2,
    random_flip=True,
    random_crop=True,
    crop_padding=2,
    crop_fill="reflect",
)


@pytest.fixture(scope="module")
def raw16():
    return synthetic(n_train=64, n_test=32, size=16, seed=5)


def test_muon_trains_a_fastnet_and_puts_each_parameter_in_one_group(raw16):
    cfg = cfg_of(**MUON, epochs=8.0)
    tr = Trainer(cfg, prepare(raw16, cfg))
    names = {g["name"]: g for g in tr.engine.optimizer.param_groups}
    assert set(names) == {"output", "vectors", "muon"}
    model = tr.engine.model
    assert names["output"]["params"] == [model.head.weight]
    assert all(p.ndim == 4 for p in names["muon"]["params"]) and len(names["muon"]["params"]) == 4
    assert all(p.ndim == 1 for p in names["vectors"]["params"])
    grouped = [id(p) for g in names.values() for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert math.isclose(names["muon"]["lr_scale"], 0.1) and math.isclose(names["vectors"]["lr_scale"], 0.1)
    tr.fit()
    loss = tr.history.loss[: tr.step]
    assert np.isfinite(loss).all() and loss[-8:].mean() < loss[:8].mean() - 0.1, loss
    # --muon-normalize reaches Muon (what it does is checked exactly in test_muon.py)
    assert names["muon"]["normalize_weights"] is True and names["muon"]["ns_steps"] == 3


def test_a_muon_run_resumes_bit_identically(raw16, tmp_path):
    cfg = cfg_of(**MUON, epochs=2.0, eval_every=4)
    whole = Trainer(cfg, prepare(raw16, cfg), run_dir=tmp_path / "a")
    whole.fit()
    part = Trainer(cfg, prepare(raw16, cfg), run_dir=tmp_path / "b")
    part.fit(until_step=5)
    resumed = Trainer(cfg, prepare(raw16, cfg), run_dir=tmp_path / "b")
    resumed.resume()
    resumed.fit()
    np.testing.assert_array_equal(resumed.history.loss[: resumed.step], whole.history.loss[: whole.step])
    for k, v in whole.engine.model.state_dict().items():
        assert torch.equal(v, resumed.engine.model.state_dict()[k]), k


def test_micro_batches_give_the_full_batch_gradient_without_batch_norm():
    small = synthetic(n_train=96, n_test=16, size=8, seed=1)
    base = dict(
        hidden_sizes=[32], optimizer="sgd", lr=0.1, momentum=0.0, batch_size=48, steps=1, train_eval_size=0
    )
    states = []
    for micro in (0, 16, 20):
        cfg = cfg_of(**base, micro_batch=micro)
        tr = Trainer(cfg, prepare(small, cfg))
        if micro == 20:
            assert tr.engine._chunks(48) == 3 and tr.engine._chunks(3) == 1
        tr.fit()
        states.append({k: v.clone() for k, v in tr.engine.model.state_dict().items()})
        loss = float(tr.history.loss[0])
        if micro == 0:
            loss0 = loss
        else:
            assert math.isclose(loss, loss0, rel_tol=1e-5)
    for other in states[1:]:
        for k, v in states[0].items():
            torch.testing.assert_close(other[k], v, rtol=1e-5, atol=1e-6)


def test_micro_batches_never_leave_one_sample_for_batch_norm():
    cfg = cfg_of(**MUON, micro_batch=2, steps=1)
    tr = Trainer(cfg, prepare(synthetic(n_train=64, n_test=32, size=16, seed=5), cfg))
    assert tr.engine._chunks(5) == 2  # 3 + 2, not 2 + 2 + 1
    assert tr.engine._chunks(16) == 8


@pytest.mark.parametrize(
    "kw,expect",
    [
        (dict(optimizer="muon"), "needs --backend torch"),
        (dict(micro_batch=8), "micro_batch = 8 needs --backend torch"),
        (dict(backend="torch", optimizer="muon", muon_momentum=1.0), "muon_momentum"),
        (dict(backend="torch", micro_batch=-1), "micro_batch"),
    ],
)
def test_bad_muon_settings_are_named(kw, expect):
    with pytest.raises(ConfigError, match=expect):
        TrainConfig(dataset="synthetic", **kw).validate()


def test_muon_needs_a_matrix_besides_the_output_layer():
    small = synthetic(n_train=32, n_test=8, size=8, seed=1)
    cfg = cfg_of(hidden_sizes=[], optimizer="muon")
    with pytest.raises(ConfigError, match="needs a weight matrix besides the output layer"):
        Trainer(cfg, prepare(small, cfg))

"""Plots and the HTML report: valid PNGs for normal and degenerate histories, the confusion matrix,
the choice of samples for the prediction grid, and a self-contained report."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from chainrule import report  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    return Image.open(io.BytesIO(data)).size


EVALS = [
    {"step": s, "train_loss": 1.0 / s, "val_loss": 1.2 / s, "test_loss": 1.1 / s,
     "train_acc": 1 - 0.5 / s, "val_acc": 1 - 0.6 / s, "test_acc": None if s == 20 else 1 - 0.55 / s}
    for s in (10, 20, 30)
]  # fmt: skip


def test_curves_render_for_normal_and_degenerate_histories():
    loss = np.exp(-np.linspace(0, 3, 300)) + 0.01 * np.random.default_rng(0).random(300)
    for png in (
        report.loss_curves(loss, 50, EVALS, "t"),
        report.loss_curves(np.array([np.inf, 1.0, np.nan]), 100, []),  # diverged, no evaluations
        report.loss_curves(np.empty(0), 100, []),
        report.accuracy_curves(EVALS),
        report.accuracy_curves([]),
        report.lr_curve(np.geomspace(1.0, 1e-5, 300)),
        report.lr_curve(np.empty(0)),
    ):
        w, h = png_size(png)
        assert w > 200 and h > 100


def test_confusion_matrix_counts_and_plot():
    y = np.array([0, 0, 1, 2, 2, 2])
    p = np.array([0, 1, 1, 2, 0, 2])
    cm = report.confusion_matrix(y, p, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.sum() == 6 and np.trace(cm) == 4
    assert png_size(report.confusion_plot(cm, ["a", "b", "c"]))[0] > 100
    empty = np.array([], np.int64)
    assert report.confusion_matrix(empty, empty, 2).tolist() == [[0, 0], [0, 0]]


def test_pick_samples_includes_mistakes_and_is_seeded():
    y = np.arange(100) % 10
    p = y.copy()
    p[[3, 17, 42]] = 0
    idx = report.pick_samples(y, p, n=10, seed=1)
    assert idx.size == 10 and np.unique(idx).size == 10
    assert {3, 17, 42} <= set(idx.tolist())  # every mistake shown (fewer than n/2)
    assert np.array_equal(idx, report.pick_samples(y, p, n=10, seed=1))
    assert report.pick_samples(y[:4], y[:4], n=10).tolist() == [0, 1, 2, 3]  # fewer samples than n


@pytest.mark.parametrize("channels", [1, 3])
def test_prediction_grid_marks_mistakes(channels):
    gray = np.random.default_rng(0).integers(0, 256, (5, 1, 8, 8), dtype=np.uint8)
    imgs = np.repeat(gray, channels, axis=1)  # gray RGB: no red pixels of its own
    y = np.array([0, 1, 2, 1, 0])
    p = np.array([0, 1, 0, 1, 2])
    png = report.prediction_grid(imgs, y, p, np.full(5, 0.9), ["zero", "one", "two"], cols=3)
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    red = (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)
    assert red.sum() > 50  # the two mistakes have red titles and frames
    clean = report.prediction_grid(imgs, y, y, None, ["zero", "one", "two"], cols=3)
    img = np.asarray(Image.open(io.BytesIO(clean)).convert("RGB")).astype(int)
    red = (img[..., 0] > 200) & (img[..., 1] < 60) & (img[..., 2] < 60)
    assert red.sum() == 0


def test_report_is_self_contained_and_escaped(tmp_path):
    png = report.accuracy_curves(EVALS)
    summary = {
        "name": "r<1>",
        "status": "completed",
        "message": "done",
        "final": {"test_acc": 0.98765},
        "best": {"monitor": "val_loss", "step": 30, "value": 0.04},
        "command": "chainrule train",
    }
    cfg = {"name": "r<1>", "lr": 0.001, "hidden_sizes": [10, 5], "description": "a & b"}
    evals = [dict(EVALS[0], epoch=1.0, time=0.1, lr=0.1) for _ in range(100)]
    path = report.write_report(tmp_path / "report.html", summary, cfg, evals, {"Accuracy": png, "Loss": png})
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "r&lt;1&gt;" in text and "<1>" not in text and "a &amp; b" in text
    assert "98.77%" in text and "10, 5" in text
    srcs = re.findall(r"src='([^']*)'", text)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[0].split(",", 1)[1]) == png
    assert "60 of 100 evaluations shown" in text
    assert not [p for p in tmp_path.iterdir() if p.name != "report.html"]


def test_save_png_is_atomic(tmp_path):
    target = tmp_path / "x.png"
    report.save_png(PNG + b"old", target)
    report.save_png(PNG + b"new", target)
    assert target.read_bytes() == PNG + b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def _figure(monkeypatch, draw):
    """The matplotlib figure a plot function draws (instead of its PNG bytes)."""
    from chainrule.report import plots

    monkeypatch.setattr(plots, "_to_png", lambda fig: fig)
    return draw()


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_a_run_with_one_evaluation_shows_its_numbers_not_points_on_a_step_axis(monkeypatch):
    one = [{"step": 200, "train_acc": 0.951, "val_acc": 0.9432, "test_acc": None}]
    fig = _figure(monkeypatch, lambda: report.accuracy_curves(one, "r", final={"test_acc": 0.9401}))
    (ax,) = fig.axes
    assert ax.get_xlim() == (0.0, 100.0) and ax.get_xlabel() == "accuracy (%)"
    assert _texts(ax) == ["95.10%", "94.32%", "94.01%"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["train", "val", "test (final)"]
    assert "step 200" in ax.get_title()
    monkeypatch.undo()
    assert png_size(report.accuracy_curves(one))[0] > 200  # also without the final metrics


def test_the_accuracy_curves_end_with_the_final_test_accuracy_when_it_was_not_evaluated(monkeypatch):
    evals = [{**e, "test_acc": None} for e in EVALS]
    fig = _figure(monkeypatch, lambda: report.accuracy_curves(evals, final={"test_acc": 0.97}))
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["train", "val", "test (final)"]
    star = ax.get_lines()[-1]
    assert list(star.get_xdata()) == [30.0] and list(star.get_ydata()) == [97.0]
    assert "97.00%" in _texts(ax)


def test_report_leads_with_the_accuracies_then_the_command_then_the_changed_settings(tmp_path):
    summary = {
        "name": "r",
        "status": "completed",
        "message": "completed 200 steps (0.25 epochs) in 1.0 s",
        "final": {"test_acc": 0.98765, "val_acc": 0.9812, "test_loss": 0.04},
        "command": "chainrule train --lr 0.05 --epochs 2",
    }
    config = {"name": "r", "lr": 0.05, "epochs": 2.0, "batch_size": 256, "hidden_sizes": [512]}
    changed = {"lr": 0.05, "epochs": 2.0}
    text = report.render_report(summary, config, [], {}, changed)
    body = text[text.index("<body>") :]
    order = [
        body.index("<div class='num'>98.77%</div>"),
        body.index("<div class='num'>98.12%</div>"),
        body.index("completed 200 steps"),
        body.index("chainrule train --lr 0.05 --epochs 2"),
        body.index("Settings that differ from the defaults"),
        body.index("<details>"),
        body.index("<h2>Summary</h2>"),
    ]
    assert order == sorted(order)
    shown = body[order[4] : order[5]]
    assert "<th>lr</th>" in shown and "<th>epochs</th>" in shown and "batch_size" not in shown
    folded = body[order[5] : body.index("</details>")]
    assert all(f"<th>{k}</th>" in folded for k in config)
    # no validation split: the test accuracy alone; the default run says so
    alone = report.render_report({**summary, "final": {"test_acc": 0.5}}, config, [], {}, {})
    assert alone.count("<div class='num'>") == 1 and "none: the default run" in alone

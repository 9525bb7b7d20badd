"""The sweep report's pieces: aggregation over seeds (mean ± sample std, n), ranking, wall time of
killed sessions, and the plots from plain arrays (chainrule.report.sweep_plots)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from chainrule import report
from chainrule.sweep.report import group, rank_metric, ranked, trials_cell, wall_time

PNG = b"\x89PNG\r\n\x1a\n"


def row(tid, params, seed, status="completed", **metrics):
    return {"trial_id": tid, "params": params, "seed": seed, "status": status, **metrics}


def test_group_stats_and_ranking():
    trials = [
        row("a", {"lr": 0.1}, 0, val_acc=0.90, test_acc=0.89),
        row("b", {"lr": 0.1}, 1, val_acc=0.92, test_acc=0.91),
        row("c", {"lr": 0.01}, 0, val_acc=0.95, test_acc=0.94),
        row("d", {"lr": 0.01}, 1, "failed", val_acc=None),
        row("e", {"lr": 1.0}, 0, "failed"),
    ]
    configs = ranked(group(trials), "val_acc")
    assert [c.params["lr"] for c in configs] == [0.01, 0.1, 1.0]  # no result: last
    mean, std, n = configs[1].stat("val_acc")
    assert mean == pytest.approx(0.91) and std == pytest.approx(np.std([0.90, 0.92], ddof=1)) and n == 2
    assert configs[0].stat("val_acc") == (0.95, 0.0, 1)  # the failed seed does not count
    assert math.isnan(configs[2].stat("val_acc")[0]) and configs[2].stat("val_acc")[2] == 0
    assert rank_metric(trials) == "val_acc"
    assert rank_metric([row("x", {}, 0, test_acc=0.5, val_acc=None)]) == "test_acc"


def test_wall_time_counts_killed_sessions_until_their_last_result():
    sessions = [{"started": 100.0, "finished": None}, {"started": 200.0, "finished": 260.0}]
    trials = [{"finished": 130.0}, {"finished": 150.0}, {"finished": 250.0}, {"finished": None}]
    assert wall_time(sessions, trials) == pytest.approx(50.0 + 60.0)


def test_plots_render_from_plain_arrays():
    png = report.metric_by_value("lr", [1e-4, 1e-3, 1e-2, 1e-1], [80, 90, 95, 60], [1, 0.5, 0.2, 10])
    assert png.startswith(PNG) and len(png) > 5000
    several = report.metric_by_value(
        "activation", ["relu", "tanh", "relu", "tanh"], [95, 90, 96, np.nan], [0.1, 0.2, 0.1, 0.0]
    )
    assert several.startswith(PNG)
    lists = report.metric_by_value("hidden_sizes", [[100], [300, 100]], [90.0, 91.0], [0.0, 0.0])
    assert lists.startswith(PNG)
    x = np.arange(1, 6, dtype=float)
    bands = report.curve_bands(
        {"lr=0.1": [(x, 90 + x), (x[:3], 91 + x[:3])], "lr=0.01": [(x, 80 + x)]}, ylabel="acc"
    )
    assert bands.startswith(PNG)
    cells = np.array([[90.0, 91.0, np.nan], [80.0, 85.0, 95.0]])
    hm = report.heatmap("dropout", [0.0, 0.1], "lr", [1e-3, 1e-2, 1e-1], cells)
    assert hm.startswith(PNG)


def test_value_labels_and_html_is_self_contained():
    assert report.value_label(0.001) == "0.001" and report.value_label([100, 50]) == "[100, 50]"
    assert report.value_label(True) == "true" and report.value_label(1.23456789) == "1.235"
    html = report.render_sweep_report(
        "s<1>",
        "desc & more",
        [("trials", 3)],
        [("lr", "0.1")],
        (
            ["#", "lr", "val acc (%)", "trials"],
            [[1, "0.1", "91.00 ± 1.41", {"text": "a b", "href": "trials/a/"}]],
            [True, False, True, False],
        ),
        (["trial", "config", "seed", "error"], [["x", "lr=10", 0, "diverged <at> step 3"]]),
        {"A plot": (PNG + b"data", "what it shows")},
        {"lr": 0.1},
    )
    assert "s&lt;1&gt;" in html and "desc &amp; more" in html and "diverged &lt;at&gt; step 3" in html
    assert "<a href='trials/a/'>a b</a>" in html and "<tr class='best'>" in html
    assert html.count("data:image/png;base64,") == 1 and not re.search(r"""src=['"](?!data:)""", html)


def test_ties_in_accuracy_are_broken_by_the_validation_loss():
    trials = [
        row("a", {"lr": 0.07}, 0, val_acc=1.0, val_loss=0.0136),
        row("b", {"lr": 0.07}, 1, val_acc=1.0, val_loss=0.0154),
        row("c", {"lr": 0.3}, 0, val_acc=1.0, val_loss=1.8e-7),
        row("d", {"lr": 0.3}, 1, val_acc=1.0, val_loss=3.6e-8),
        row("e", {"lr": 0.003}, 0, val_acc=0.95, val_loss=0.81),
    ]
    for order in (trials, trials[::-1]):
        assert [c.params["lr"] for c in ranked(group(order), "val_acc")] == [0.3, 0.07, 0.003]


def _figure(monkeypatch, draw):
    from chainrule.report import sweep_plots

    monkeypatch.setattr(sweep_plots, "_to_png", lambda fig: fig)
    return draw()


def test_log_uniform_keys_get_a_log_axis_and_accuracy_axes_end_at_100(monkeypatch):
    lrs = [0.0755, 0.0738, 0.00302, 0.00285]  # the demo's draws: less than two decades apart
    means, stds = [100.0, 100.0, 93.0, 90.0], [0.0, 0.0, 3.0, 4.0]
    (ax,) = _figure(monkeypatch, lambda: report.metric_by_value("lr", lrs, means, stds)).axes
    assert ax.get_xscale() == "linear"  # by the spread alone
    fig = _figure(monkeypatch, lambda: report.metric_by_value("lr", lrs, means, stds, log=True, cap=100))
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_ylim()[1] == 100.0
    fig.canvas.draw()
    shown = [t.get_text() for m in (False, True) for t in ax.get_xticklabels(minor=m) if t.get_text()]
    assert "0.01" in shown and not any("times" in t for t in shown), shown  # numbers, not 3x10^-3 stacks
    x = np.arange(1, 5, dtype=float)
    runs = {"lr=0.07": [(x, np.full(4, 100.0)), (x, np.array([97.0, 99.0, 100.0, 100.0]))]}
    (ax,) = _figure(monkeypatch, lambda: report.curve_bands(runs, cap=100)).axes
    assert ax.get_ylim()[1] == 100.0
    (ax,) = _figure(monkeypatch, lambda: report.curve_bands(runs)).axes
    assert ax.get_ylim()[1] > 100.0  # the band of mean ± std, uncapped


def test_a_trial_links_to_its_report_only_where_it_has_one(tmp_path):
    (tmp_path / "trials" / "aaa").mkdir(parents=True)
    (tmp_path / "trials" / "bbb").mkdir(parents=True)
    (tmp_path / "trials" / "bbb" / "report.html").write_text("<html></html>")
    assert trials_cell(tmp_path, "aaa ccc (failed)") == "aaa ccc (failed)"
    assert trials_cell(tmp_path, "bbb aaa") == {"text": "bbb aaa", "href": "trials/bbb/report.html"}
    assert trials_cell(tmp_path, "") == ""

"""The page of `chainrule runs compare`: several runs' curves overlaid, their config diff and their
final metrics side by side, in one self-contained HTML file. Takes only plain values (labels,
arrays, dicts, PNG bytes); `chainrule.runs.compare` reads them from the run folders."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .html import CSS, _fmt
from .plots import _legend, _plt, _to_png

Series = tuple[np.ndarray, np.ndarray]  # (x, y), same length
LINE_STYLES = ("-", "--", ":", "-.")


def overlay_curves(
    runs: Mapping[str, Mapping[str, Series]],
    ylabel: str,
    title: str = "",
    xlabel: str = "step",
    scale: float = 1.0,
    log_y: bool | None = None,
) -> bytes:
    """One colour per run (outer key, the legend label), one line style per series (inner key, e.g.
    "train" and "val"), each y multiplied by `scale` (100 for percent). `log_y=None` picks a log
    axis when the positive values span more than a factor of 100."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 4.4))
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles: dict[str, str] = {}
    values = []
    for i, (label, series) in enumerate(runs.items()):
        colour = cycle[i % len(cycle)]
        for name, (x, y) in series.items():
            if not len(x):
                continue
            style = styles.setdefault(name, LINE_STYLES[len(styles) % len(LINE_STYLES)])
            y = np.asarray(y, float) * scale
            values.append(y)
            suffix = f" ({name})" if name else ""
            ax.plot(np.asarray(x, float), y, style, color=colour, lw=1.4, label=f"{label}{suffix}")
    if log_y is None and values:
        pos = np.concatenate(values)
        pos = pos[np.isfinite(pos) & (pos > 0)]
        log_y = bool(pos.size) and pos.max() / pos.min() > 100
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or ylabel)
    ax.grid(alpha=0.3)
    _legend(ax)
    return _to_png(fig)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], first_is_key: bool = True) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            tag = "th" if first_is_key and i == 0 else "td"
            cls = " class='num'" if isinstance(v, int | float) and not isinstance(v, bool) else ""
            cells.append(f"<{tag}{cls}>{html.escape(_fmt(v))}</{tag}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_runs_comparison(
    labels: Sequence[str],
    metrics: Sequence[tuple[str, Sequence[Any]]],
    config_diff: Sequence[tuple[str, Sequence[Any]]],
    images: Mapping[str, bytes],
    folders: Sequence[str] = (),
) -> str:
    """The HTML text.

    Args:
        labels: one per run, the column headers.
        metrics: (metric name, one value per run) rows, e.g. ("test accuracy", ["98.1%", "97.9%"]).
        config_diff: (config key, one value per run) rows of the keys that differ.
        images: caption -> PNG bytes, shown in order.
        folders: one per run, listed under the title.
    """
    head = ["", *labels]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>chainrule: {len(labels)} runs compared</title><style>{CSS}",
        "body { max-width: 1200px; } td, th { white-space: nowrap; }</style></head><body>",
        f"<h1>{len(labels)} runs compared</h1>",
    ]
    if folders:
        items = "".join(
            f"<li><b>{html.escape(lab)}</b>: <code>{html.escape(f)}</code></li>"
            for lab, f in zip(labels, folders, strict=True)
        )
        parts.append(f"<ul class='muted'>{items}</ul>")
    parts += ["<h2>Final metrics</h2>", _table(head, [(k, *vs) for k, vs in metrics])]
    parts.append("<h2>Configuration differences</h2>")
    if config_diff:
        parts.append(_table(head, [(k, *vs) for k, vs in config_diff]))
    else:
        parts.append("<p>The runs have the same configuration (apart from where they were written).</p>")
    for caption, png in images.items():
        b64 = base64.b64encode(png).decode("ascii")
        cap = html.escape(caption)
        parts.append(f"<h2>{cap}</h2><img alt='{cap}' src='data:image/png;base64,{b64}'>")
    parts.append("</body></html>\n")
    return "\n".join(parts)

"""Plots and the self-contained HTML report of a run (matplotlib is imported only when plotting)."""

from .compare import engine_comparison_plot
from .html import render_report, write_report
from .plots import (
    accuracy_curves,
    confusion_matrix,
    confusion_plot,
    loss_curves,
    lr_curve,
    pick_samples,
    prediction_grid,
    save_png,
)

__all__ = [
    "accuracy_curves",
    "confusion_matrix",
    "confusion_plot",
    "engine_comparison_plot",
    "loss_curves",
    "lr_curve",
    "pick_samples",
    "prediction_grid",
    "render_report",
    "save_png",
    "write_report",
]

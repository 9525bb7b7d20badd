"""Plots and self-contained HTML reports of a run and of a sweep (matplotlib is imported only when
plotting)."""

from .compare import engine_comparison_plot
from .html import render_report, write_report
from .plots import (
    accuracy_curves,
    confusion_matrix,
    confusion_plot,
    loss_curves,
    lr_curve,
    pick_samples,
    plotting_missing,
    prediction_grid,
    save_png,
    time_to_accuracy,
    time_to_accuracy_runs,
)
from .runs_compare import overlay_curves, render_runs_comparison
from .sweep_html import render_sweep_report
from .sweep_plots import curve_bands, heatmap, metric_by_value, rung_trajectories, value_label

__all__ = [
    "accuracy_curves",
    "confusion_matrix",
    "confusion_plot",
    "curve_bands",
    "heatmap",
    "engine_comparison_plot",
    "loss_curves",
    "metric_by_value",
    "overlay_curves",
    "rung_trajectories",
    "lr_curve",
    "time_to_accuracy_runs",
    "pick_samples",
    "plotting_missing",
    "prediction_grid",
    "render_report",
    "render_runs_comparison",
    "render_sweep_report",
    "save_png",
    "time_to_accuracy",
    "value_label",
    "write_report",
]

"""The plot of `chainrule compare`: both engines' loss per step, and how far apart they are."""

from __future__ import annotations

import numpy as np

from .plots import _plt, _to_png


def engine_comparison_plot(
    loss_a: np.ndarray,
    loss_b: np.ndarray,
    loss_rel: np.ndarray,
    param_rel: np.ndarray,
    labels: tuple[str, str] = ("numpy", "torch"),
    title: str = "",
) -> bytes:
    """Two panels over the steps 1..n: the training loss of each engine, and (log scale) the
    relative difference of the loss and the largest relative difference of any parameter."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.arange(1, loss_a.size + 1)
    ax1.plot(steps, loss_a, label=labels[0], lw=2.2, alpha=0.6)
    ax1.plot(steps, loss_b, label=labels[1], lw=1.0, ls="--", color="black")
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss (batch mean)")
    ax1.set_title("loss per step")
    ax1.legend()
    floor = np.finfo(np.float64).tiny
    ax2.semilogy(steps, np.maximum(loss_rel, floor), label="|loss difference| / |loss|")
    ax2.semilogy(steps, np.maximum(param_rel, floor), label="max parameter difference (relative)")
    ax2.set_xlabel("step")
    ax2.set_title(f"{labels[0]} vs {labels[1]}: relative difference")
    ax2.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _to_png(fig)

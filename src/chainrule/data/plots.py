"""A grid of random samples per class (seed 000, Fig. 1), written atomically as PNG or SVG."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chainrule._io import atomic_write

from .datasets import Dataset


def plot_class_samples(
    data: Dataset | tuple[np.ndarray, np.ndarray],
    classes: Sequence[str] | None = None,
    per_class: int = 8,
    path: str | os.PathLike[str] = "samples.png",
    seed: int = 0,
    title: str | None = None,
) -> Path:
    """Plot `per_class` random training images of every class, one row per class.

    Args:
        data: a `Dataset` (its training split is used) or a pair (x uint8/float (N, C, H, W), y (N,)).
        classes: row labels (default: the data set's class names, else the label numbers).
        per_class: images per row (fewer if a class has fewer).
        path: output file, `.png` or `.svg`; written to a temp file and renamed.
        seed: seed of the sample choice.
        title: figure title.
    Returns:
        the path written.
    """
    if isinstance(data, Dataset):
        x, y = data.x_train, data.y_train
        classes = classes if classes is not None else data.classes
        title = title if title is not None else data.name
    else:
        x, y = (np.asarray(a) for a in data)
    if x.ndim != 4 or len(x) != len(y):
        raise ValueError(f"plot_class_samples: need x (N, C, H, W) and y (N,), got {x.shape} and {y.shape}")
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ValueError(f"plot_class_samples: {path}: use a .png or .svg file name")
    labels = np.unique(y)
    n_cls = int(labels.max()) + 1 if classes is None else len(classes)
    names = list(classes) if classes is not None else [str(i) for i in range(n_cls)]
    rng = np.random.default_rng(seed)

    from matplotlib.figure import Figure  # no pyplot: no global backend state, no GUI

    fig = Figure(figsize=(per_class * 0.9 + 1.2, n_cls * 0.9 + 0.4))
    axes = fig.subplots(n_cls, per_class, squeeze=False)
    for k in range(n_cls):
        members = np.flatnonzero(y == k)
        pick = rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else []
        for j in range(per_class):
            ax = axes[k, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < len(pick):
                img = np.asarray(x[pick[j]])
                img = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
                vmax = 255 if img.dtype == np.uint8 else None
                ax.imshow(
                    img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=vmax, interpolation="nearest"
                )
            if j == 0:
                ax.set_ylabel(names[k], rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(
        left=0.15, right=0.99, top=0.95 if title else 0.99, bottom=0.01, wspace=0.05, hspace=0.05
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=100))

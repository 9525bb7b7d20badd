"""Data preparation for the trainer: load once, split, scale, standardize, flatten.

Everything the hot loop touches is prepared here, once: contiguous float arrays of shape
(N, C*H*W) and int64 labels. The statistics (per-channel mean and std of the training split) are
kept so that `evaluate` and `predict` apply exactly the same transform.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import ConfigError, TrainConfig

SHARED_DATA = Path("..") / "shared" / "datasets"


def resolve_data_root(data_dir: str | None, download: bool = False) -> str | None:
    """Where to look for data: `data_dir`, then `$CHAINRULE_DATA`, then `../shared/datasets`
    (relative to the working directory) if it exists; None lets the loader use its own default
    (the user cache).

    A `data_dir` the user names must be a folder (else `ConfigError`): the loader would otherwise
    quietly fall back to the other places. With `download` it may be missing (it is created)."""
    if data_dir:
        path = Path(data_dir).expanduser()
        if not path.is_dir() and not (download and not path.exists()):
            what = "is not a folder" if path.exists() else "does not exist"
            hint = "" if download else " (name an existing folder, or add --download to fetch the data there)"
            raise ConfigError(f"data_dir {data_dir} {what}{hint}")
        return data_dir
    env = os.environ.get("CHAINRULE_DATA")
    if env:
        return env
    if SHARED_DATA.is_dir():
        return str(SHARED_DATA.resolve())
    return None


@dataclass
class RawData:
    """Unprocessed arrays: uint8 images (N, C, H, W), int64 labels, class names."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    files: list[dict] = field(default_factory=list)  # what was read (`chainrule.data.Dataset.files`)


@dataclass
class Prepared:
    """Flattened float arrays ready for training, plus what is needed to transform new images."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    image_shape: tuple[int, int, int]
    mean: np.ndarray  # (C,) in [0, 1] units; input = (x/255 - mean) / std
    std: np.ndarray  # (C,)
    raw_test: np.ndarray  # uint8 (N, C, H, W), for the prediction grid

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_features(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one training input as the engine receives it: (D,) flattened floats for
        MLPs, (C, H, W) uint8 for image models."""
        return tuple(int(s) for s in self.x_train.shape[1:])


def synthetic(**options: Any) -> RawData:
    """`chainrule.data.synthetic.generate(**options)` as `RawData` (tests and notebooks that want a
    small set of their own size; `dataset = "synthetic"` is the registered default one)."""
    from chainrule.data.synthetic import generate

    *arrays, classes = generate(**options)
    return RawData(*arrays, classes)


def load_raw(cfg: TrainConfig) -> RawData:
    """The data set named in `cfg` as uint8 arrays (N, C, H, W)."""
    from chainrule import data  # the loaders; imported here so `chainrule.train` loads without them

    # a generated set reads no folder: a --data-dir is not looked at
    root = resolve_data_root(cfg.data_dir, cfg.download) if needs_files(cfg.dataset) else None
    # a --data-dir is the only folder searched: no other copy is ever used in its place
    ds: Any = data.load(cfg.dataset, root=root, download=cfg.download, exclusive=bool(root and cfg.data_dir))
    where = ds.source or cfg.dataset
    if ds.y_train.size == 0:
        raise ConfigError(f"{where}: the training split holds no images")
    if 0 in ds.x_train.shape[1:]:
        raise ConfigError(
            f"{where}: the images have shape {tuple(ds.x_train.shape[1:])}: no pixels to train on"
        )
    return RawData(
        np.asarray(ds.x_train),
        np.asarray(ds.y_train, np.int64),
        np.asarray(ds.x_test),
        np.asarray(ds.y_test, np.int64),
        [str(c) for c in ds.classes],
        list(ds.files),
    )


def needs_files(dataset: str) -> bool:
    """Whether the data set `dataset` is read from files (not generated; an unknown name counts as
    read, so the loader's error names it)."""
    from chainrule.data.registry import get_spec

    try:
        return get_spec(dataset).needs_files
    except ValueError:
        return True


def transform(x_uint8: np.ndarray, mean: np.ndarray, std: np.ndarray, dtype: Any) -> np.ndarray:
    """uint8 (N, C, H, W) -> float (N, C*H*W): scale to [0, 1], subtract mean, divide by std
    (per channel; `chainrule.data.preprocess.normalizer`). Chunked, so no float64 copy of a whole
    data set is ever made."""
    from chainrule.data.preprocess import normalize_into, normalizer

    n = x_uint8.shape[0]
    out = np.empty((n, int(np.prod(x_uint8.shape[1:]))), dtype)  # also for 0 images
    scale, shift = normalizer(mean, std, dtype)  # (C,)
    view = out.reshape(x_uint8.shape)
    for s in range(0, n, 8192):
        normalize_into(view[s : s + 8192], x_uint8[s : s + 8192], scale, shift)
    return out


def channel_stats(x_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std in [0, 1] units (`chainrule.data.channel_stats`: exact, no
    float64 copy of the images); a constant channel gets std 1, so it is only centred."""
    from chainrule import data

    mean, std = data.channel_stats(x_uint8, per_channel=True)
    std[std < 1e-8] = 1.0
    return mean, std


def input_stats(x_train: np.ndarray, preprocess: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) such that the model input is (x/255 - mean) / std, per channel."""
    c = x_train.shape[1]
    if preprocess == "scale":
        return np.zeros(c), np.ones(c)
    mean, std = channel_stats(x_train)
    if preprocess == "standardize":
        return mean, std
    if preprocess == "center":
        return mean, np.ones(c)
    if preprocess == "center255":
        return mean, np.full(c, 1.0 / 255.0)
    raise ValueError(f"unknown preprocess {preprocess!r}")


def prepare(raw: RawData, cfg: TrainConfig) -> Prepared:
    """Split off validation (stratified, seeded), standardize with training-split statistics,
    flatten, and convert to the configured dtype. For image models (`cfg.model` other than mlp)
    the images stay uint8 (N, C, H, W): the engine standardizes each batch with `mean`/`std`."""
    x, y = raw.x_train, raw.y_train
    if x.ndim == 3:  # (N, H, W) grayscale
        x = x[:, None]
    x_test = raw.x_test[:, None] if raw.x_test.ndim == 3 else raw.x_test
    if x.ndim != 4 or x.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (N, C, H, W), got {x.dtype} {x.shape}")
    dtype = np.dtype(cfg.dtype)
    if cfg.val_fraction > 0:
        from chainrule.data.preprocess import stratified_split

        tr, va = stratified_split(y, cfg.val_fraction, cfg.seed)
        for split, idx in (("validation", va), ("training", tr)):
            if idx.size == 0:  # each class's share is rounded: a small data set can leave none
                raise ConfigError(
                    f"val_fraction = {cfg.val_fraction} of the {y.size} training images leaves no "
                    f"{split} images; use another --val-fraction (0: no validation split)"
                )
        x_tr, y_tr, x_va, y_va = x[tr], y[tr], x[va], y[va]
    else:
        x_tr, y_tr, x_va, y_va = x, y, None, None
    mean, std = input_stats(x_tr, cfg.preprocess)
    if cfg.model == "mlp":  # flattened, standardized floats

        def model_input(images: np.ndarray) -> np.ndarray:
            return transform(images, mean, std, dtype)

    else:  # image models: uint8 (N, C, H, W), standardized per batch by the engine

        def model_input(images: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(images)

    return Prepared(
        x_train=model_input(x_tr),
        y_train=np.ascontiguousarray(y_tr, np.int64),
        x_val=None if x_va is None else model_input(x_va),
        y_val=None if y_va is None else np.ascontiguousarray(y_va, np.int64),
        x_test=model_input(x_test),
        y_test=np.ascontiguousarray(raw.y_test, np.int64),
        classes=list(raw.classes),
        image_shape=tuple(int(s) for s in x.shape[1:]),  # type: ignore[arg-type]
        mean=mean,
        std=std,
        raw_test=x_test,
    )
